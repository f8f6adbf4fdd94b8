#!/bin/sh
# The fault matrix: one run of a collection per fault the sandbox embedder
# can plant (or the test can cause: a service stopped, a run killed, the
# database restarted), each checked for exactness, printed as a Markdown
# table: fault | exit code | rows verified | service items used.
#   usage: matrix.sh BUILD_DIR        (make fault-matrix)
#
# Each row starts from the same state: collection "acme" (N chunks, no
# vectors, no run, nothing quarantined) and collection "tenant_b", embedded
# once at the start, whose embedding rows must stay byte-identical.
#
# Exact means: every vector written equals the sandbox's vector of its
# chunk's text, fetched straight from a clean embedder (POST /api/embed,
# not through embfill) into fm.ref at the start; model, dimension and
# content hash are those of the chunk.  Quarantined chunks must be the
# predicted ones: the texts the faulty embedder answers with an all-zero or
# absurd vector (asked directly, once the run is over), the one chunk longer
# than --max-input-chars, the one chunk that is not UTF-8.  `embfill verify`
# must pass, and so must the isolation audit.
#
# "Service items used" is the sum of the inputs of the embedder's 200
# answers (GET /stats "items"), over all its lives in the row; right or
# planted-faulty answers alike.
#
# The test owns its PostgreSQL cluster (unix socket in a temp dir) and its
# embedders (loopback, a free port), stopped by PID however it ends.  Fault
# dice are keyed by --seed and the request's number, so the planted faults
# are the same from one run of the matrix to the next.
#
# Row 11 stops the service for OUTAGE seconds mid-run.  A build with a retry
# budget (EMBED_RETRY_BUDGET_S) must wait it out (exit 0); without one the
# wait is bounded by EMBED_MAX_ATTEMPTS and its jittered backoff, so exit 4
# is accepted, recorded with when the run gave up, and followed by --resume.
#
# Exit status: 0 when every row behaved as expected, 1 otherwise (the rows
# that did not are listed under the table, marked in it, and the temp dir
# with each row's log is kept; KEEP_TMP=1 keeps it anyway).
set -eu

build=$(cd "${1:?usage: matrix.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
EF_TOP=$(cd "$here/../.." && pwd)
. "$EF_TOP/tests/lib/servers.sh"
PSQL=${PSQL:-psql}

N=2000; DIM=64; BATCH=20; CONC=2; SEED=7
LONG=1000           # chunk_index of the chunk longer than MAX_CHARS
MAX_CHARS=1000
LATENCY=100         # ms per request in the rows that stop something mid-run
OUTAGE=10           # seconds the service is gone in row 11
tmp=$(mktemp -d /tmp/embfill-faults.XXXXXX)
chmod 755 "$tmp"
EMB_PID=""; RUN_PID=""
cleanup() {
	[ -z "$RUN_PID" ] || kill -KILL "$RUN_PID" 2>/dev/null || true
	stop_pid "$EMB_PID" TERM
	servers_stop
	if [ -n "${KEEP_TMP:-}" ]; then echo "faults: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

die() { echo "faults: ERROR: $*" >&2; exit 1; }
say() { echo "faults: $*" >&2; }

# --- the cluster: two databases, UTF8 and SQL_ASCII ------------------------------
pg_start "$tmp" || die "PostgreSQL did not start"
pg_port=$(printf '%s\n' "$EF_TEST_PG_DSN" | sed 's/.*port=\([0-9]*\).*/\1/')
DSN_MAIN=$EF_TEST_PG_DSN
DSN_ASCII="host=$tmp/pg port=$pg_port user=postgres dbname=fm_ascii"
DSN=$DSN_MAIN
# psql alone gets PGOPTIONS (no NOTICEs of DROP ... IF EXISTS); embfill's
# sessions keep their own settings
psql_() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" -XAtq -v ON_ERROR_STOP=1 "$@"; }
sql() { psql_ "$DSN" -c "$1"; }
jsql() { # json query: the query reads the JSON as :'j'
	printf '%s\n' "$2" | psql_ -v j="$1" "$DSN"
}
pg_restart() {
	stop_pid "$EF_PG_PID" INT
	if [ "$(id -u)" -eq 0 ]; then o="setpriv --reuid=nobody --regid=nogroup --clear-groups --"; else o=""; fi
	$o "$PG_BIN/postgres" -D "$tmp/pg/data" -k "$tmp/pg" -p "$pg_port" -c listen_addresses='' \
		-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
		-c max_connections=60 >>"$tmp/pg/server.log" 2>&1 &
	EF_PG_PID=$!
	wait_for 30 "$PG_BIN/pg_isready" -q -h "$tmp/pg" -p "$pg_port" || die "PostgreSQL did not restart"
}
sql "CREATE DATABASE fm_ascii WITH ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"

# --- the embedder: one process per row (or per life), always on the same port ---
emb_port=$(free_port)
EMB_FLAGS=""
acc=0   # items of the embedder's earlier lives in this row
emb_start() {
	# shellcheck disable=SC2086
	"$build/embfill-embedder" --port "$emb_port" --dim "$DIM" --model m1 --seed "$SEED" \
		--parent-pid $$ $EMB_FLAGS >>"$tmp/emb.log" 2>&1 &
	EMB_PID=$!
	wait_for 30 curl -sf "http://127.0.0.1:$emb_port/health" || die "the embedder did not start (flags: $EMB_FLAGS)"
}
emb_stats() { curl -sf "http://127.0.0.1:$emb_port/stats"; }
emb_items() { emb_stats | sed 's/.*"items":\([0-9]*\).*/\1/'; }
emb_status_count() { # status -> answers with it
	emb_stats | sed -n "s/.*\"by_status\":{[^}]*\"$1\":\([0-9]*\).*/\1/p" | grep . || echo 0
}
# The count is read just before the stop: an answer sent in between (a few
# ms) is not counted, so a row with a stopped service may count up to one
# window (CONC x BATCH) short.
emb_stop() {
	acc=$((acc + $(emb_items)))
	stop_pid "$EMB_PID" TERM
	EMB_PID=""
}
emb_row() { # flags...: a fresh embedder for a row
	[ -z "$EMB_PID" ] || stop_pid "$EMB_PID" TERM
	EMB_FLAGS="$*"; acc=0
	emb_start
}
items_used() { echo $((acc + $(emb_items))); }

# Asks the running embedder directly for the vectors of acme's first N
# chunks, as embfill asks (ollama, truncate false), into table fm.$1.
fetch_vectors() { # table
	sql "SELECT json_build_object('model', 'm1', 'truncate', false,
	       'input', json_agg(content ORDER BY chunk_index))
	     FROM document_chunks WHERE collection = 'acme' AND chunk_index <= $N" >"$tmp/req.json"
	curl -sf --data-binary @"$tmp/req.json" -H 'Content-Type: application/json' \
		"http://127.0.0.1:$emb_port/api/embed" >"$tmp/resp.json" || die "the embedder refused the reference request"
	psql_ "$DSN" >/dev/null <<SQL
DROP TABLE IF EXISTS fm.raw, fm.$1;
CREATE TABLE fm.raw (body text);
\\copy fm.raw FROM '$tmp/resp.json'
CREATE TABLE fm.$1 AS
  SELECT t.o::int AS chunk_index, t.e AS vec
  FROM fm.raw, jsonb_array_elements(fm.raw.body::jsonb -> 'embeddings') WITH ORDINALITY AS t(e, o);
DROP TABLE fm.raw;
SQL
	[ "$(sql "SELECT count(*) FROM fm.$1")" -eq "$N" ] || die "the embedder answered $(sql "SELECT count(*) FROM fm.$1") vectors for $N texts"
}

# --- the two databases: schema, acme, tenant_b, the reference vectors -----------
write_conf() { # file dsn
	cat >"$1" <<EOT
DATABASE_URL="$2"
EMBED_PROVIDER=ollama
EMBED_URL=http://127.0.0.1:$emb_port
EMBED_MODEL=m1
EMBED_DIM=$DIM
BATCH_SIZE=$BATCH
EMBED_CONCURRENCY=$CONC
HISTORYLOG=$tmp/historylog.md
EOT
}
write_conf "$tmp/main.env" "$DSN_MAIN"
write_conf "$tmp/ascii.env" "$DSN_ASCII"
CONF=$tmp/main.env
ef() { "$build/embfill" --config "$CONF" "$@"; }

EMB_FLAGS=""; emb_start          # clean, for tenant_b and the reference
for db in main ascii; do
	if [ $db = main ]; then DSN=$DSN_MAIN; CONF=$tmp/main.env; else DSN=$DSN_ASCII; CONF=$tmp/ascii.env; fi
	ef schema init --dim "$DIM" >"$tmp/init-$db.log" 2>&1 || { cat "$tmp/init-$db.log" >&2; die "schema init ($db)"; }
	sql "INSERT INTO documents (id, collection, title, body) VALUES (1, 'acme', 'a', 'a'), (2, 'tenant_b', 'b', 'b');
	     INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
	       SELECT g, 1, 'acme', g, CASE WHEN g = $LONG
	           THEN 'acme chunk ' || g || ', far too long: ' || repeat('gears and levers and pulleys ', 60)
	           ELSE 'acme chunk ' || g || ': ' || md5(g::text) || ' about gears and levers' END
	       FROM generate_series(1, $N) g;
	     INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
	       SELECT 100000 + g, 2, 'tenant_b', g, 'tenant b chunk ' || g || ' about pumps' FROM generate_series(1, 200) g;
	     CREATE SCHEMA fm" >/dev/null
	ef run -C tenant_b --confirm tenant_b >"$tmp/tenant_b-$db.log" 2>&1 || { cat "$tmp/tenant_b-$db.log" >&2; die "tenant_b's run ($db)"; }
	fetch_vectors ref
	sql "ALTER TABLE fm.ref ADD COLUMN embedding vector($DIM);
	     UPDATE fm.ref SET embedding = vec::text::vector"
done
# the SQL_ASCII database stores any bytes: one chunk of acme is not UTF-8
DSN=$DSN_ASCII
sql "INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
     VALUES ($N + 1, 1, 'acme', $N + 1, E'acme chunk $((N + 1)), Latin-1 caf\\xe9 and a stray \\xff byte')"
[ "$(sql "SELECT count(*) FROM document_chunks WHERE collection = 'acme' AND content LIKE '%' || E'\\xff' || '%'")" -eq 1 ] ||
	die "the SQL_ASCII database did not keep the invalid byte"
DSN=$DSN_MAIN; CONF=$tmp/main.env
stop_pid "$EMB_PID" TERM; EMB_PID=""

tb_md5() { sql "SELECT md5(string_agg(e::text, ',' ORDER BY chunk_id)) FROM document_embeddings e WHERE collection = 'tenant_b'"; }
DSN=$DSN_ASCII; TB_ASCII=$(tb_md5)
DSN=$DSN_MAIN; TB_MAIN=$(tb_md5)

# Does this build know a retry budget (how long a run waits out a service
# that is gone)?  Without one, EMBED_MAX_ATTEMPTS bounds the wait.
ef --set EMBED_RETRY_BUDGET_S=60 status >"$tmp/budget.log" 2>&1 || true
if grep -q 'unknown setting' "$tmp/budget.log"; then budget=no; else budget=yes; fi

# --- one row ---------------------------------------------------------------------
reset_acme() {
	sql "DELETE FROM document_embeddings WHERE collection = 'acme';
	     DELETE FROM embfill.quarantine WHERE collection = 'acme';
	     DELETE FROM embfill.vectors WHERE collection = 'acme';
	     DELETE FROM embfill.runs WHERE collection = 'acme'" >/dev/null
	[ "$(sql "SELECT count(*) FROM document_embeddings WHERE collection = 'acme'")" -eq 0 ] || die "acme not reset"
}
log=""
start_run() { # extra args: embfill run in the background, RUN_PID
	starts=$((starts + 1))
	"$build/embfill" --config "$CONF" run -C acme --confirm acme "$@" >>"$log" 2>&1 </dev/null &
	RUN_PID=$!
}
run_fg() { # extra args -> rc (and secs, the run's wall time)
	starts=$((starts + 1))
	t0=$(date +%s.%N)
	rc=0
	"$build/embfill" --config "$CONF" run -C acme --confirm acme "$@" >>"$log" 2>&1 </dev/null || rc=$?
	secs=$(echo "$(date +%s.%N) - $t0" | bc)
}
wait_run() { # seconds -> rc of the background run (124: killed, it never ended)
	n=$(( $1 * 10 ))
	while kill -0 "$RUN_PID" 2>/dev/null && [ "$n" -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	if kill -0 "$RUN_PID" 2>/dev/null; then
		kill -KILL "$RUN_PID" 2>/dev/null || true
		wait "$RUN_PID" 2>/dev/null || true
		RUN_PID=""; rc=124; return 0
	fi
	rc=0; wait "$RUN_PID" || rc=$?
	RUN_PID=""
}
done_rows() { sql "SELECT coalesce(max(done), 0) FROM embfill.runs WHERE collection = 'acme'" 2>/dev/null || echo 0; }
wait_past() { # seconds chunks: until the run has committed that many, while it lives
	n=$(( $1 * 20 ))
	while [ "$n" -gt 0 ]; do
		[ "$(done_rows)" -ge "$2" ] && return 0
		kill -0 "$RUN_PID" 2>/dev/null || return 1
		sleep 0.05; n=$((n - 1))
	done
	return 1
}

ROWS=""          # the table's rows, already formatted
FAILS=""         # what went wrong, one line each
rowno=0
problems=""
problem() { problems="$problems${problems:+; }$*"; }

# Checks acme after a row.  expect_q: SQL giving the chunk ids that must be
# quarantined (empty: none); reason_like: a pattern their reasons match.
check_acme() { # expect_q reason_like
	expect_q=${1:-"SELECT NULL::bigint WHERE false"}
	reason_like=${2:-}
	vrc=0
	vj=$(ef verify -C acme --json 2>>"$log") || vrc=$?
	[ -n "$vj" ] || vj='{}'
	v_ok=$(jsql "$vj" "SELECT coalesce((:'j'::jsonb ->> 'ok'), 'missing')")
	v_unexpl=$(jsql "$vj" "SELECT count(*) FROM jsonb_array_elements(coalesce(:'j'::jsonb -> 'discrepancies', '[]')) d
	                       WHERE NOT coalesce((d ->> 'explained')::boolean, false)")
	v_q=$(jsql "$vj" "SELECT coalesce(sum((d ->> 'count')::bigint), 0) FROM jsonb_array_elements(coalesce(:'j'::jsonb -> 'discrepancies', '[]')) d
	                  WHERE d ->> 'kind' = 'quarantined'")
	v_cross=$(jsql "$vj" "SELECT coalesce((:'j'::jsonb #>> '{isolation,cross_tenant}')::bigint, -1)
	                           + coalesce((:'j'::jsonb #>> '{isolation,cross_tenant_inbound}')::bigint, -1)")
	chunks=$(sql "SELECT count(*) FROM document_chunks WHERE collection = 'acme'")
	re=$(sql "SELECT count(e.chunk_id),
	       count(*) FILTER (WHERE CASE WHEN e.chunk_id IS NULL THEN false ELSE
	           e.embedding = r.embedding AND e.model = 'm1' AND e.dim = $DIM
	           AND e.content_sha256 = sha256(convert_to(c.content, 'UTF8')) END)
	     FROM document_chunks c
	     LEFT JOIN document_embeddings e ON e.chunk_id = c.id AND e.collection = 'acme'
	     LEFT JOIN fm.ref r ON r.chunk_index = c.chunk_index
	     WHERE c.collection = 'acme'")
	rows=${re%%|*}; exact=${re##*|}
	q=$(sql "SELECT count(*) FROM embfill.quarantine WHERE collection = 'acme'")
	q_off=$(sql "SELECT count(*) FROM ((SELECT chunk_id FROM embfill.quarantine WHERE collection = 'acme'
	                                    EXCEPT $expect_q)
	                                   UNION ALL ($expect_q
	                                    EXCEPT SELECT chunk_id FROM embfill.quarantine WHERE collection = 'acme')) d")
	q_want=$(sql "SELECT count(*) FROM ($expect_q) x")
	q_both=$(sql "SELECT count(*) FROM document_embeddings e JOIN embfill.quarantine q
	              ON q.collection = 'acme' AND q.chunk_id = e.chunk_id WHERE e.collection = 'acme'")
	runs=$(sql "SELECT count(*) FROM embfill.runs WHERE collection = 'acme'")
	state=$(sql "SELECT string_agg(state, ',' ORDER BY id) FROM embfill.runs WHERE collection = 'acme'")
	if [ "$DSN" = "$DSN_MAIN" ]; then tb_want=$TB_MAIN; else tb_want=$TB_ASCII; fi
	tb=$(tb_md5)

	[ "$vrc" -eq 0 ] || problem "verify exited $vrc"
	[ "$v_ok" = true ] || problem "verify says ok=$v_ok"
	[ "$v_unexpl" -eq 0 ] || problem "verify has $v_unexpl unexplained discrepancies"
	[ "$v_cross" -eq 0 ] || problem "isolation audit: $v_cross cross-tenant rows"
	[ "$exact" -eq "$rows" ] || problem "$((rows - exact)) of $rows vectors differ from the sandbox's"
	[ "$((rows + q))" -eq "$chunks" ] || problem "$rows vectors + $q quarantined for $chunks chunks"
	[ "$q_off" -eq 0 ] || problem "quarantined $q chunks, $q_want predicted, $q_off differ"
	[ "$q_both" -eq 0 ] || problem "$q_both chunks both quarantined and embedded"
	[ "$v_q" -eq "$q" ] || problem "verify counts $v_q quarantined, the table holds $q"
	if [ -n "$reason_like" ] && [ "$q" -gt 0 ]; then
		bad_reason=$(sql "SELECT count(*) FROM embfill.quarantine WHERE collection = 'acme' AND reason NOT ILIKE '$reason_like'")
		[ "$bad_reason" -eq 0 ] || problem "$bad_reason quarantine reasons do not match '$reason_like'"
	fi
	[ "$runs" -eq 1 ] || problem "$runs run rows for acme ($state), not one resumed run"
	[ "${state##*,}" = completed ] || problem "the run is $state, not completed"
	[ "$tb" = "$tb_want" ] || problem "tenant_b's embedding rows changed"

	verified="$exact/$chunks exact"
	[ "$q" -eq 0 ] || verified="$verified + $q quarantined${qnote:+ ($qnote)}"
	verified="$verified, verify $vrc"
	if [ "$tb" = "$tb_want" ]; then verified="$verified, tenant_b byte-identical"; else verified="$verified, tenant_b CHANGED"; fi
}

begin_row() { # title
	rowno=$((rowno + 1))
	title=$1; problems=""; qnote=""; starts=0
	log=$tmp/row-$rowno.log; : >"$log"
	DSN=$DSN_MAIN; CONF=$tmp/main.env
	reset_acme
}
end_row() { # exit-code cell, items
	mark=""; [ -z "$problems" ] || mark=" **FAIL**"
	ROWS="$ROWS| $rowno. $title$mark | $1 | $verified | $2 |
"
	if [ -n "$problems" ]; then
		FAILS="$FAILS  row $rowno ($title): $problems (log: row-$rowno.log)
"
		say "row $rowno: $title: FAIL: $problems"
		sed 's/^/    | /' "$log" | tail -n 15 >&2
	else
		say "row $rowno: $title: ok (exit $1; $verified; $2 items)"
	fi
	stop_pid "$EMB_PID" TERM; EMB_PID=""
}
expect_rc() { # got want (a list like "0 4")
	for w in $2; do [ "$1" -eq "$w" ] && return 0; done
	problem "exit $1, expected $(echo "$2" | sed 's/ / or /g')"
}
# Every start of a run first checks its endpoint against the run's reference
# vectors with PROBE texts (EF_EMBED_PROBE_TEXTS in include/embfill/embed.h):
# they are counted on top of the chunks, once per start of the row's runs.
PROBE=2
expect_items() { # items min max (of chunks; the probes of each start are added)
	lo=$(($2 + starts * PROBE)); hi=$(($3 + starts * PROBE))
	if [ "$1" -lt "$lo" ] || [ "$1" -gt "$hi" ]; then
		problem "the service embedded $1 items, expected $lo to $hi ($starts starts)"
	fi
}

# --- rows 1-10: faults planted by the embedder, one plain run each ---------------
begin_row "no fault (baseline)"
emb_row
run_fg; items=$(items_used)
expect_rc "$rc" 0; check_acme; expect_items "$items" "$N" "$N"
end_row "$rc" "$items"

begin_row "HTTP 500 on the first 6 requests (--fail-first 6 --fail-status 500)"
emb_row --fail-first 6 --fail-status 500
run_fg; items=$(items_used); n500=$(emb_status_count 500)
expect_rc "$rc" 0; check_acme; expect_items "$items" "$N" "$N"
[ "$n500" -eq 6 ] || problem "$n500 answers were 500, not 6"
retries=$(sql "SELECT retries FROM embfill.runs WHERE collection = 'acme'")
[ "$retries" -ge 6 ] || problem "the run counts $retries retries for 6 failures"
verified="$verified; 6x500, $retries retries"
end_row "$rc" "$items"

begin_row "429 with Retry-After: 1 (--fail-429 0.05)"
emb_row --fail-429 0.05 --retry-after 1
run_fg; items=$(items_used); n429=$(emb_status_count 429)
expect_rc "$rc" 0; check_acme; expect_items "$items" "$N" "$N"
[ "$n429" -gt 0 ] || problem "no 429 was planted"
# a request answered 429 waits at least Retry-After before it is sent again
[ "$n429" -eq 0 ] || [ "$(echo "$secs >= 1" | bc)" -eq 1 ] || problem "the run took $secs s despite Retry-After: 1"
verified="$verified; ${n429}x429, run $(printf '%.1f' "$secs") s"
end_row "$rc" "$items"

begin_row "NaN/1e999 component in a vector (--nan-rate 0.1)"
emb_row --nan-rate 0.1
run_fg; items=$(items_used)
expect_rc "$rc" 0; check_acme; expect_items "$items" "$N" $((N * 2))
end_row "$rc" "$items"

begin_row "wrong dimension, D+-1 (--wrong-dim-rate 0.1)"
emb_row --wrong-dim-rate 0.1
run_fg; items=$(items_used)
expect_rc "$rc" 0; check_acme; expect_items "$items" "$N" $((N * 2))
end_row "$rc" "$items"

begin_row "one vector fewer than asked (--wrong-count-rate 0.1)"
emb_row --wrong-count-rate 0.1
run_fg; items=$(items_used)
expect_rc "$rc" 0; check_acme; expect_items "$items" "$N" $((N * 2))
end_row "$rc" "$items"

begin_row "malformed (truncated) JSON (--malformed-rate 0.1)"
emb_row --malformed-rate 0.1
run_fg; items=$(items_used)
expect_rc "$rc" 0; check_acme; expect_items "$items" "$N" $((N * 2))
end_row "$rc" "$items"

begin_row "all-zero vectors and norm 1e29 (--zero-rate 0.005 --huge-rate 0.005)"
emb_row --zero-rate 0.005 --huge-rate 0.005
run_fg; items=$(items_used)
# the texts this embedder always answers badly, asked directly
fetch_vectors faulty
sql "DROP TABLE IF EXISTS fm.expect;
     CREATE TABLE fm.expect AS
       SELECT c.id AS chunk_id, s.ss
       FROM fm.faulty f
       JOIN document_chunks c ON c.collection = 'acme' AND c.chunk_index = f.chunk_index
       CROSS JOIN LATERAL (SELECT sum((x::text)::float8 ^ 2) AS ss FROM jsonb_array_elements(f.vec) x) s
       WHERE s.ss = 0 OR s.ss > 1e12" >/dev/null
nz=$(sql "SELECT count(*) FROM fm.expect WHERE ss = 0"); nh=$(sql "SELECT count(*) FROM fm.expect WHERE ss > 0")
qnote="the $nz all-zero and $nh huge, as predicted"
expect_rc "$rc" 0
check_acme "SELECT chunk_id FROM fm.expect" '%unusable vector%'
[ $((nz + nh)) -gt 0 ] || problem "the embedder planted no zero or huge vector"
expect_items "$items" $((N - nz - nh)) $((N * 2))
end_row "$rc" "$items"

begin_row "batch too large: 413 above 8 inputs (--max-batch 8, BATCH_SIZE $BATCH)"
emb_row --max-batch 8
run_fg; items=$(items_used); n413=$(emb_status_count 413)
expect_rc "$rc" 0; check_acme; expect_items "$items" "$N" "$N"
[ "$n413" -gt 0 ] || problem "no 413 was answered"
verified="$verified; ${n413}x413, batches split"
end_row "$rc" "$items"

begin_row "a chunk longer than the model's context (--max-input-chars $MAX_CHARS)"
emb_row --max-input-chars "$MAX_CHARS"
run_fg; items=$(items_used)
qnote="chunk_index $LONG, context length"
expect_rc "$rc" 0
check_acme "SELECT id FROM document_chunks WHERE collection = 'acme' AND chunk_index = $LONG" '%context length%'
expect_items "$items" $((N - 1)) $((N - 1))
end_row "$rc" "$items"

# --- rows 11-15: something stopped mid-run ------------------------------------------
begin_row "service stopped mid-run for ${OUTAGE} s, then restarted"
emb_row --latency-ms "$LATENCY"
if [ $budget = yes ]; then extra="--set EMBED_RETRY_BUDGET_S=60"; want="0"; else extra=""; want="0 4"; fi
# shellcheck disable=SC2086
start_run $extra
wait_past 60 $((N / 4)) || problem "the run never got past $((N / 4)) chunks"
t_stop=$(date +%s)
emb_stop
while [ $(($(date +%s) - t_stop)) -lt "$OUTAGE" ] && kill -0 "$RUN_PID" 2>/dev/null; do sleep 0.1; done
gave_up=""
kill -0 "$RUN_PID" 2>/dev/null || gave_up=$(($(date +%s) - t_stop))
emb_start
wait_run 120
rc1=$rc; cell="$rc1"
[ -z "$gave_up" ] || cell="$rc1 (gave up ${gave_up} s into the outage)"
expect_rc "$rc1" "$want"
if [ "$rc1" -ne 0 ] && [ "$rc1" -ne 124 ]; then
	run_fg --resume
	cell="$cell, then \`run --resume\` $rc"
	expect_rc "$rc" 0
fi
items=$(items_used)
[ $budget = yes ] || cell="$cell; no EMBED_RETRY_BUDGET_S in this build, EMBED_MAX_ATTEMPTS 6"
check_acme; expect_items "$items" $((N - CONC * BATCH)) $((N + (CONC + 1) * BATCH))
end_row "$cell" "$items"

begin_row "service gone until the run gives up, then restarted"
emb_row --latency-ms "$LATENCY"
if [ $budget = yes ]; then extra="--set EMBED_RETRY_BUDGET_S=5"; else extra=""; fi
# shellcheck disable=SC2086
start_run $extra
wait_past 60 $((N / 4)) || problem "the run never got past $((N / 4)) chunks"
t_stop=$(date +%s)
emb_stop
wait_run 120
rc1=$rc; gave_up=$(($(date +%s) - t_stop))
expect_rc "$rc1" 4
grep -q 'giving up after\|longer than the retry budget' "$log" ||
	problem "the run does not say it gave up"
emb_start
run_fg --resume
cell="$rc1 (after ${gave_up} s), then \`run --resume\` $rc"
expect_rc "$rc" 0
items=$(items_used)
check_acme; expect_items "$items" $((N - CONC * BATCH)) $((N + (CONC + 1) * BATCH))
end_row "$cell" "$items"

begin_row "kill -9 of embfill mid-run, then resume"
emb_row --latency-ms "$LATENCY"
start_run
wait_past 60 $((N / 3)) || problem "the run never got past $((N / 3)) chunks"
kill -KILL "$RUN_PID" 2>/dev/null || true; wait_run 10; rc1=$rc
expect_rc "$rc1" 137
run_fg --resume
cell="$rc1 (SIGKILL), then \`run --resume\` $rc"
expect_rc "$rc" 0
items=$(items_used)
check_acme; expect_items "$items" "$N" $((N + (CONC + 1) * BATCH))
end_row "$cell" "$items"

begin_row "SIGTERM mid-run, then resume"
emb_row --latency-ms "$LATENCY"
start_run
wait_past 60 $((N / 3)) || problem "the run never got past $((N / 3)) chunks"
kill -TERM "$RUN_PID" 2>/dev/null || true; wait_run 60; rc1=$rc
st=$(sql "SELECT state FROM embfill.runs WHERE collection = 'acme'")
expect_rc "$rc1" 5
[ "$st" = interrupted ] || problem "after SIGTERM the run is $st, not interrupted"
run_fg --resume
cell="$rc1 ($st), then \`run --resume\` $rc"
expect_rc "$rc" 0
items=$(items_used)
# the batches in flight finish and are written: nothing asked twice
check_acme; expect_items "$items" "$N" "$N"
end_row "$cell" "$items"

begin_row "PostgreSQL restarted mid-run, then resume"
emb_row --latency-ms "$LATENCY"
start_run
wait_past 60 $((N / 3)) || problem "the run never got past $((N / 3)) chunks"
pg_restart
wait_run 120; rc1=$rc
expect_rc "$rc1" 3
# libpq's message is several lines: printed as one, not with literal \n
if grep 'database:' "$log" | grep -q '\\n'; then
	problem "the database's message is printed with literal \\n: $(grep 'database:' "$log" | head -n 1)"
fi
run_fg --resume
cell="$rc1, then \`run --resume\` $rc"
expect_rc "$rc" 0
items=$(items_used)
check_acme; expect_items "$items" "$N" $((N + (CONC + 1) * BATCH))
end_row "$cell" "$items"

# --- row 16: a chunk that is not UTF-8, in a SQL_ASCII database ---------------------
begin_row "a chunk not UTF-8 (SQL_ASCII database)"
DSN=$DSN_ASCII; CONF=$tmp/ascii.env
reset_acme
emb_row
run_fg; items=$(items_used)
qnote="the byte 0xFF chunk, not UTF-8, never sent"
expect_rc "$rc" 0
check_acme "SELECT $N + 1" '%UTF-8%'
expect_items "$items" "$N" "$N"
end_row "$rc" "$items"

# --- the table -------------------------------------------------------------------------
echo "| fault | exit code | rows verified | service items used |"
echo "| --- | --- | --- | --- |"
printf '%s' "$ROWS"
if [ -n "$FAILS" ]; then
	echo
	echo "fault matrix: FAIL: rows that did not behave as expected:"
	printf '%s' "$FAILS"
	KEEP_TMP=${KEEP_TMP:-1}
	exit 1
fi
echo
echo "fault matrix: ok, $rowno rows (N=$N, dim $DIM, batch $BATCH, concurrency $CONC, seed $SEED)"
