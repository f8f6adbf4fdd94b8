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

echo "bench: PostgreSQL 15 (real[] vectors, dimension $dim), sandbox embedder (hash backend)"
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
