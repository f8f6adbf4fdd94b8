#!/bin/sh
# make bench: speed and peak memory of `embfill run`, against the COPY
# BINARY ceiling of the same vectors on the same table.  Numbers are printed,
# never asserted.
#   usage: run.sh BUILD_DIR [CHUNKS]
set -eu
build=$1
chunks=${2:-${BENCH_CHUNKS:-100000}}
dim=768
here=$(cd "$(dirname "$0")" && pwd)
EF_TOP=$(cd "$here/../.." && pwd)
. "$EF_TOP/tests/lib/servers.sh"

# Reading and writing one answer, CPU alone (no server needed).
"$build/bench/parse_bench"
"$build/bench/render_bench"

tmp=$(mktemp -d /tmp/embfill-bench.XXXXXX)
chmod 755 "$tmp"
EMB_PIDS=""
cleanup() {
	for p in $EMB_PIDS; do stop_pid "$p" TERM; done
	servers_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

pg_start "$tmp"
dsn=$EF_TEST_PG_DSN
export PGOPTIONS="-c client_min_messages=warning"

start_embedder() { # latency -> sets EMB_URL
	"$build/embfill-embedder" --port 0 --dim $dim --model bench --latency-ms "$1" \
		>"$tmp/emb-$1.out" 2>&1 &
	EMB_PIDS="$EMB_PIDS $!"
	wait_for 30 grep -q listening "$tmp/emb-$1.out"
	EMB_URL="http://$(sed -n 's/^listening on //p' "$tmp/emb-$1.out")"
}

start_embedder 0; url0=$EMB_URL
start_embedder 50; url50=$EMB_URL

cat >"$tmp/embfill.env" <<ENV
DATABASE_URL="$dsn"
EMBED_PROVIDER=tei
EMBED_MODEL=bench
EMBED_DIM=$dim
BATCH_SIZE=100
HISTORYLOG=$tmp/history.md
ENV
cd "$tmp"
"$build/embfill" schema init --dim $dim >/dev/null

load() { # chunks
	psql -q "$dsn" <<SQL
TRUNCATE document_embeddings, document_chunks, documents CASCADE;
TRUNCATE embfill.runs CASCADE;
INSERT INTO documents (id, collection, title, body) VALUES (1, 'bench', 'bench', 'b');
INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
  SELECT g, 1, 'bench', g, 'chunk ' || g || ' of the benchmark corpus: ' ||
         repeat(md5(g::text) || ' words about embeddings and vectors ', 3)
  FROM generate_series(1, $1) g;
ANALYZE document_chunks;
SQL
}

reset() {
	psql -q "$dsn" -c "TRUNCATE document_embeddings; TRUNCATE embfill.runs CASCADE; CHECKPOINT" >/dev/null
}

run_one() { # chunks concurrency latency url
	reset
	out=$(/usr/bin/time -f 'RSS %M' "$build/embfill" --set "EMBED_URL=$4" run -C bench \
		--confirm bench --concurrency "$2" 2>&1 </dev/null)
	rss=$(printf '%s\n' "$out" | sed -n 's/^RSS //p')
	rate=$(printf '%s\n' "$out" | sed -n 's/.*s (\([0-9]*\) chunks\/s).*/\1/p')
	secs=$(printf '%s\n' "$out" | sed -n 's/.* in \([0-9.]*\) s (.*/\1/p')
	wait=$(printf '%s\n' "$out" | sed -n 's/.*, \([0-9.]*\) s waiting on writes.*/\1/p')
	printf '%8d chunks  concurrency %d  latency %3d ms  %6s chunks/s  %5s s  peak RSS %6s KiB  waiting on writes %5s s\n' \
		"$1" "$2" "$3" "$rate" "$secs" "$rss" "$wait"
	echo "$rate" >"$tmp/rate-$2-$3"
}

vtype=$(psql -qAt "$dsn" -c "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
	WHERE attrelid = 'document_embeddings'::regclass AND attname = 'embedding'")
echo "bench: PostgreSQL 15 ($vtype vectors), sandbox embedder (hash backend)"
load 10000
run_one 10000 8 0 "$url0"
load "$chunks"
for c in 1 8; do
	run_one "$chunks" "$c" 0 "$url0"
	run_one "$chunks" "$c" 50 "$url50"
done

# The ceiling: COPY BINARY of the very vectors the last run wrote, into the
# same table with the same keys, constraints and indexes.
psql -q "$dsn" -c "\\copy document_embeddings TO '$tmp/vectors.bin' (FORMAT binary)"
reset
start=$(date +%s.%N)
psql -q "$dsn" -c "\\copy document_embeddings FROM '$tmp/vectors.bin' (FORMAT binary)"
end=$(date +%s.%N)
rows=$(psql -qAt "$dsn" -c "SELECT count(*) FROM document_embeddings")
ceiling=$(echo "$rows / ($end - $start)" | bc -l)
printf 'COPY BINARY ceiling: %d rows in %.2f s = %.0f rows/s\n' "$rows" \
	"$(echo "$end - $start" | bc -l)" "$ceiling"
for c in 1 8; do
	for l in 0 50; do
		printf 'ratio to the ceiling, concurrency %d latency %2d ms: %.2f\n' "$c" "$l" \
			"$(echo "$(cat "$tmp/rate-$c-$l") / $ceiling" | bc -l)"
	done
done

# Past one service and one host: endpoints that each compute 2 requests at
# once at 50 ms (a GPU's queue, --compute-slots), EMBED_CONCURRENCY=2 on
# each.  One worker on 1, 2 and 4 endpoints; then 1, 2 and 3 workers (the
# first starts the run, the others --join it), each with an endpoint of its
# own, as hosts with a GPU each would be.  Rates are wall-clock chunks/s from
# the first start to the last exit; one endpoint's ceiling is 2 x 100 / 0.05
# = 4000 chunks/s.
start_gpu() { # n -> sets EMB_URL
	"$build/embfill-embedder" --port 0 --dim $dim --model bench --latency-ms 50 \
		--compute-slots 2 >"$tmp/gpu-$1.out" 2>&1 &
	EMB_PIDS="$EMB_PIDS $!"
	wait_for 30 grep -q listening "$tmp/gpu-$1.out"
	EMB_URL="http://$(sed -n 's/^listening on //p' "$tmp/gpu-$1.out")"
}
for i in 1 2 3 4; do start_gpu "$i"; eval "gpu$i=\$EMB_URL"; done
scale_chunks=${SCALE_CHUNKS:-40000}
load "$scale_chunks"
now() { date +%s.%N; }
wait_run() { # until the run is set up, so that others can join it
	i=0
	until [ "$(psql -qAt "$dsn" -c "SELECT count(*) FROM embfill.runs r WHERE state = 'running'
		AND EXISTS (SELECT 1 FROM embfill.leases l WHERE l.run_id = r.id)")" = 1 ]; do
		i=$((i + 1)); [ "$i" -lt 600 ] || { echo "bench: the run never started" >&2; exit 1; }
		sleep 0.05
	done
}
scale_run() { # label url-of-worker-1 [url-of-worker-2 ...] -> sets RATE
	label=$1; shift
	reset
	start=$(now)
	pids=""; n=0
	for url in "$@"; do
		if [ "$n" -eq 0 ]; then join=""; else join="--join"; wait_run; fi
		"$build/embfill" --set "EMBED_URL=$url" --set LEASE_CHUNKS=2000 run -C bench \
			--confirm bench --concurrency 2 $join >"$tmp/scale-$n.out" 2>&1 </dev/null &
		pids="$pids $!"; n=$((n + 1))
	done
	for p in $pids; do wait "$p" || { cat "$tmp"/scale-*.out >&2; exit 1; }; done
	end=$(now)
	RATE=$(echo "$scale_chunks / ($end - $start)" | bc -l)
	printf '%-44s %7.0f chunks/s  %5.2f s\n' "$label" "$RATE" "$(echo "$end - $start" | bc -l)"
}
echo "scale: $scale_chunks chunks, endpoints computing 2 requests at once at 50 ms:"
scale_run "1 worker, 1 endpoint" "$gpu1"; e1=$RATE
scale_run "1 worker, 2 endpoints" "$gpu1,$gpu2"; e2=$RATE
scale_run "1 worker, 4 endpoints" "$gpu1,$gpu2,$gpu3,$gpu4"; e4=$RATE
scale_run "1 worker (its own endpoint)" "$gpu1"; w1=$RATE
scale_run "2 workers (an endpoint each)" "$gpu1" "$gpu2"; w2=$RATE
scale_run "3 workers (an endpoint each)" "$gpu1" "$gpu2" "$gpu3"; w3=$RATE
# the database's ceiling on the same table, in the same run
psql -q "$dsn" -c "\\copy document_embeddings TO '$tmp/scale.bin' (FORMAT binary)"
reset
start=$(now)
psql -q "$dsn" -c "\\copy document_embeddings FROM '$tmp/scale.bin' (FORMAT binary)"
end=$(now)
sceil=$(echo "$scale_chunks / ($end - $start)" | bc -l)
printf 'COPY BINARY ceiling of these %d rows: %.0f rows/s\n' "$scale_chunks" "$sceil"
for k in 2 4; do
	eval "r=\$e$k"
	printf 'endpoints x%d: speed-up %.2f of %d (%.0f%% of linear), %.2f of the COPY ceiling\n' \
		"$k" "$(echo "$r / $e1" | bc -l)" "$k" "$(echo "100 * $r / $e1 / $k" | bc -l)" \
		"$(echo "$r / $sceil" | bc -l)"
done
for k in 2 3; do
	eval "r=\$w$k"
	printf 'workers x%d:   speed-up %.2f of %d (%.0f%% of linear), %.2f of the COPY ceiling\n' \
		"$k" "$(echo "$r / $w1" | bc -l)" "$k" "$(echo "100 * $r / $w1 / $k" | bc -l)" \
		"$(echo "$r / $sceil" | bc -l)"
done
load "$chunks"

# The new-collection path on the same chunks: copy and embed into a new
# collection, swap, roll back; an in-place run with --backup and its
# restore; and re-chunking documents.
timed() { # label command...
	label=$1; shift
	start=$(date +%s.%N)
	"$@" >"$tmp/timed.out" 2>&1 </dev/null || { cat "$tmp/timed.out" >&2; exit 1; }
	end=$(date +%s.%N)
	printf '%-44s %7.2f s\n' "$label" "$(echo "$end - $start" | bc -l)"
}
ef() { "$build/embfill" --set "EMBED_URL=$url0" "$@"; }
rows=$(psql -qAt "$dsn" -c "SELECT count(*) FROM document_chunks WHERE collection = 'bench'")
echo "new collection, swap and rollback on $rows chunks (concurrency 8, latency 0):"
timed "run --into bench_v2 (copy, then embed)" ef run -C bench --confirm bench --into bench_v2 \
	--concurrency 8
sed -n 's/^\(copied .*\)/  \1/p; s/^run .* in \([0-9.]*\) s (\([0-9]*\) chunks\/s).*/  of which the run: \1 s, \2 chunks\/s/p' "$tmp/timed.out"
timed "swap (gate: verify + self-retrieval; renames)" ef swap -C bench --with bench_v2 --confirm bench
timed "rollback of the swap" ef rollback -C bench
psql -q "$dsn" -c "UPDATE document_embeddings SET content_sha256 = sha256('x'::bytea) WHERE collection = 'bench'"
timed "in-place run, every vector stale, --backup" ef run -C bench --confirm bench --backup \
	--concurrency 8
sed -n 's/^  backup: \([0-9]*\) rows.*/  rows saved first: \1/p' "$tmp/timed.out"
timed "rollback: restore the backup" ef rollback -C bench
psql -q "$dsn" <<SQL
INSERT INTO documents (id, collection, title, body)
  SELECT 10 + g, 'docs', 'doc ' || g, string_agg('Paragraph ' || p || ' of ' || g || '. ' ||
         repeat(md5(g::text || p::text) || ' is a word. ', 12), E'\n\n' ORDER BY p)
  FROM generate_series(1, 2000) g, generate_series(1, 10) p GROUP BY g;
SQL
mb=$(psql -qAt "$dsn" -c "SELECT round(sum(octet_length(body)) / 1048576.0, 1) FROM documents WHERE collection = 'docs'")
timed "chunk 2,000 documents ($mb MiB) at 1000/100" ef chunk -C docs --into docs_v2
sed -n 's/^chunked \(.*\)/  \1/p' "$tmp/timed.out"

# status on a million chunks
psql -q "$dsn" <<SQL
TRUNCATE document_embeddings, document_chunks, documents CASCADE;
INSERT INTO documents (id, collection, title, body)
  SELECT g, 'tenant_' || g, 't', 'b' FROM generate_series(1, 20) g;
INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
  SELECT g, 1 + g % 20, 'tenant_' || (1 + g % 20), g,
         'chunk ' || g || ' ' || repeat(md5(g::text), 8)
  FROM generate_series(1, 1000000) g;
INSERT INTO document_embeddings (chunk_id, collection, model, dim, content_sha256, embedding)
  SELECT id, collection, CASE WHEN id % 10 = 0 THEN 'old' ELSE 'bench' END, $dim,
         sha256(convert_to(content, 'UTF8')), NULL
  FROM document_chunks WHERE id % 4 <> 0;
UPDATE document_embeddings SET embedding = array_fill(0.5::real, ARRAY[$dim]) WHERE chunk_id % 8 = 1;
VACUUM ANALYZE;
SQL
for what in "status" "status -C tenant_7"; do
	start=$(date +%s.%N)
	# shellcheck disable=SC2086
	"$build/embfill" $what --json >/dev/null
	end=$(date +%s.%N)
	printf 'embfill %s on 1,000,000 chunks: %.2f s\n' "$what" "$(echo "$end - $start" | bc -l)"
done
