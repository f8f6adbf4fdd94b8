#!/bin/sh
# The crash test: one run of a collection killed with SIGKILL at 20 points
# spread over it, PostgreSQL restarted once and the embedding service once,
# each time resumed; in the end the collection is exact.
#   usage: run.sh BUILD_DIR
#
# Kill points: while batches are in flight (by the run's own progress),
# between a batch's writes and their commit, and during the final counts
# (both held there by EMBFILL_TEST_HOLD, see core/run/run.c).  The test
# owns its PostgreSQL cluster and its sandbox service, so that it can
# restart them; both are stopped by PID however the test ends.
#
# Checked at the end: every chunk's vector equals the one a clean run of
# the same texts writes (its twin collection), one run row for the
# collection, the other collection byte-identical, and the service asked
# for at most N items plus, per kill, one window (concurrency x batch: the
# requests on the wire or answered) and the batch written but not committed
# (the next request leaves before a batch is written), and per start of
# the run the probe texts its endpoint is checked with against the run's
# reference vectors (EF_EMBED_PROBE_TEXTS, embed.h).
set -eu

build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
EF_TOP=$(cd "$here/../.." && pwd)
. "$EF_TOP/tests/lib/servers.sh"
PSQL=${PSQL:-psql}

N=3000; BATCH=20; CONC=2; KILLS=20; PROBE_TEXTS=2
tmp=$(mktemp -d /tmp/embfill-crash.XXXXXX)
chmod 755 "$tmp"
EMB_PID=""; RUN_PID=""
cleanup() {
	[ -z "$RUN_PID" ] || kill -KILL "$RUN_PID" 2>/dev/null || true
	stop_pid "$EMB_PID" TERM
	servers_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail() { echo "crash: FAIL: $*" >&2; exit 1; }
sql() { "$PSQL" -XAtq "$EF_TEST_PG_DSN" -c "$1"; }

# --- the cluster and the service, each restartable on its own port -----------
pg_start "$tmp"
pg_port=$(printf '%s\n' "$EF_TEST_PG_DSN" | sed 's/.*port=\([0-9]*\).*/\1/')
pg_restart() {
	stop_pid "$EF_PG_PID" INT
	if [ "$(id -u)" -eq 0 ]; then o="setpriv --reuid=nobody --regid=nogroup --clear-groups --"; else o=""; fi
	$o "$PG_BIN/postgres" -D "$tmp/pg/data" -k "$tmp/pg" -p "$pg_port" -c listen_addresses='' \
		-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
		-c max_connections=60 >>"$tmp/pg/server.log" 2>&1 &
	EF_PG_PID=$!
	wait_for 30 "$PG_BIN/pg_isready" -q -h "$tmp/pg" -p "$pg_port" || fail "PostgreSQL did not restart"
}
emb_port=$(free_port)
acc=0   # items of the service's earlier lives (its counters start at 0)
emb_start() {
	"$build/embfill-embedder" --port "$emb_port" --dim 16 --model m1 --latency-ms 100 \
		>>"$tmp/emb.log" 2>&1 &
	EMB_PID=$!
	wait_for 30 curl -sf "http://127.0.0.1:$emb_port/health" || fail "the embedder did not start"
}
emb_items() { curl -sf "http://127.0.0.1:$emb_port/stats" | sed 's/.*"items":\([0-9]*\).*/\1/'; }
emb_restart() {
	acc=$((acc + $(emb_items)))
	stop_pid "$EMB_PID" KILL
	emb_start
}
emb_start

cat >"$tmp/embfill.env" <<EOT
DATABASE_URL="$EF_TEST_PG_DSN"
EMBED_PROVIDER=ollama
EMBED_URL=http://127.0.0.1:$emb_port
EMBED_MODEL=m1
EMBED_DIM=16
BATCH_SIZE=$BATCH
EMBED_CONCURRENCY=$CONC
EMBED_MAX_ATTEMPTS=30
HISTORYLOG=$tmp/historylog.md
EOT
ef() { "$build/embfill" --config "$tmp/embfill.env" "$@"; }

ef schema init --dim 16 >/dev/null || fail "schema init"
sql "INSERT INTO documents (id, collection, title, body) VALUES
       (1, 'acme', 'a', 'a'), (2, 'globex', 'g', 'g'), (3, 'twin', 't', 't');
     INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
       SELECT g, 1, 'acme', g, 'chunk ' || g || ' of the crash test, about gears' FROM generate_series(1, $N) g;
     INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
       SELECT 100000 + g, 2, 'globex', g, 'globex ' || g FROM generate_series(1, 50) g;
     INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
       SELECT 200000 + g, 3, 'twin', g, 'chunk ' || g || ' of the crash test, about gears' FROM generate_series(1, $N) g" >/dev/null
ef run -C globex --confirm globex >/dev/null 2>&1 || fail "globex run"
ef run -C twin --confirm twin >/dev/null 2>&1 || fail "twin run"
globex_md5=$(sql "SELECT md5(string_agg(e::text, ',' ORDER BY chunk_id)) FROM document_embeddings e WHERE collection = 'globex'")
base=$(emb_items)   # globex's and the twin's

done_rows() { sql "SELECT coalesce(max(done), 0) FROM embfill.runs WHERE collection = 'acme'" 2>/dev/null || echo 0; }
held() { [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%EMBFILL_TEST_HOLD%' AND pid <> pg_backend_pid()" 2>/dev/null || echo 0)" -gt 0 ]; }

starts=0
start_run() { # hold
	starts=$((starts + 1))
	flag="--resume"
	[ "$(sql "SELECT count(*) FROM embfill.runs WHERE collection = 'acme'")" -gt 0 ] || flag=""
	EMBFILL_TEST_HOLD="$1" "$build/embfill" --config "$tmp/embfill.env" run -C acme \
		--confirm acme $flag >>"$tmp/runs.log" 2>&1 </dev/null &
	RUN_PID=$!
}
kill_run() {
	kill -KILL "$RUN_PID" 2>/dev/null || true
	wait "$RUN_PID" 2>/dev/null || true
	RUN_PID=""
}
wait_until() { # seconds condition...
	n=$(( $1 * 20 )); shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		kill -0 "$RUN_PID" 2>/dev/null || return 1
		sleep 0.05; n=$((n - 1))
	done
	return 1
}
past() { [ "$(done_rows)" -ge "$1" ]; }

kills=0
k=1
while [ "$k" -le "$KILLS" ]; do
	case $k in
	4|11|17) start_run "commit:2"; point="a batch written, not committed"
		wait_until 60 held || fail "kill $k: the run never reached its hold" ;;
	20) point="the final counts"
		start_run "final"
		wait_until 120 held || fail "kill $k: the run never reached the final counts" ;;
	*) # a little further than the last kill got, spread over the run
		now=$(done_rows)
		target=$(( now + (N - now) / (KILLS - k + 3) ))
		point="batches in flight, past $target chunks"
		start_run ""
		wait_until 120 past "$target" || fail "kill $k: the run never got past $target (see runs.log)" ;;
	esac
	kill_run
	kills=$((kills + 1))
	echo "crash: kill $k: $point (done $(done_rows) of $N)"
	[ "$k" -ne 7 ] || { pg_restart; echo "crash: PostgreSQL restarted"; }
	[ "$k" -ne 13 ] || { emb_restart; echo "crash: the embedding service restarted"; }
	k=$((k + 1))
done
# killed in the final counts, the run had recorded itself complete; any
# other kill leaves it interrupted, and resumable
if [ "$(sql "SELECT state FROM embfill.runs WHERE collection = 'acme'")" != completed ]; then
	starts=$((starts + 1))
	"$build/embfill" --config "$tmp/embfill.env" run -C acme --confirm acme --resume \
		>>"$tmp/runs.log" 2>&1 </dev/null || { tail -n 20 "$tmp/runs.log" >&2; fail "the last resume failed"; }
fi

# --- exact ---------------------------------------------------------------------
bad=$(sql "SELECT count(*) FROM document_chunks a
             JOIN document_embeddings ea ON ea.chunk_id = a.id AND ea.collection = 'acme'
             JOIN document_chunks t ON t.collection = 'twin' AND t.chunk_index = a.chunk_index
             JOIN document_embeddings et ON et.chunk_id = t.id AND et.collection = 'twin'
           WHERE a.collection = 'acme' AND (ea.embedding::text IS DISTINCT FROM et.embedding::text
             OR ea.model <> 'm1' OR ea.content_sha256 <> sha256(convert_to(a.content, 'UTF8')))")
rows=$(sql "SELECT count(*) FROM document_embeddings WHERE collection = 'acme'")
runs=$(sql "SELECT count(*) FROM embfill.runs WHERE collection = 'acme'")
state=$(sql "SELECT state FROM embfill.runs WHERE collection = 'acme'")
g2=$(sql "SELECT md5(string_agg(e::text, ',' ORDER BY chunk_id)) FROM document_embeddings e WHERE collection = 'globex'")
items=$((acc + $(emb_items) - base))
limit=$((N + kills * (CONC + 1) * BATCH + starts * PROBE_TEXTS))
echo "crash: $kills kills; acme rows $rows of $N, $bad differ from the clean twin; runs $runs ($state);"
echo "crash: the service embedded $items items for $N chunks (at most $limit allowed)"
[ "$rows" -eq "$N" ] || fail "acme has $rows embedding rows, not $N"
[ "$bad" -eq 0 ] || fail "$bad vectors differ from a clean run's"
[ "$runs" -eq 1 ] || fail "$runs run rows for acme, not 1"
[ "$state" = completed ] || fail "the run is $state"
[ "$g2" = "$globex_md5" ] || fail "globex changed"
[ "$items" -le "$limit" ] || fail "the service embedded $items items, more than $limit"
ef verify -C acme >/dev/null || fail "verify does not pass"
echo "crash: ok"
