#!/bin/sh
# make bench: a backfill into a table with an HNSW index, the index kept
# against load-then-build, in the same run on the same chunks: COPY BINARY
# into the indexed table against COPY into the bare table and CREATE INDEX
# afterwards, then `embfill run` with the index kept against `embfill run
# --rebuild-index`, and what plan predicted for both.  Numbers are printed,
# never asserted.  Needs pgvector in the system PostgreSQL (says so and
# stops when it is not there).
#   usage: index.sh BUILD_DIR
#   BENCH_INDEX_CHUNKS  chunks (default 5000: on 2 shared cores an HNSW
#                       index of 768 dimensions takes about a minute to fill
#                       row by row at that size)
set -eu
build=$1
chunks=${BENCH_INDEX_CHUNKS:-5000}
dim=768
here=$(cd "$(dirname "$0")" && pwd)
EF_TOP=$(cd "$here/../.." && pwd)
. "$EF_TOP/tests/lib/servers.sh"

tmp=$(mktemp -d /tmp/embfill-index.XXXXXX)
chmod 755 "$tmp"
EMB_PID=""
cleanup() {
	stop_pid "$EMB_PID" TERM
	servers_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

pg_start "$tmp"
dsn=$EF_TEST_PG_DSN
export PGOPTIONS="-c client_min_messages=warning"
if [ "$(psql -qAt "$dsn" -c "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")" = 0 ]; then
	echo "index bench: not run: pgvector is not installed in the system PostgreSQL"
	exit 0
fi

"$build/embfill-embedder" --port 0 --dim $dim --model bench >"$tmp/emb.out" 2>&1 &
EMB_PID=$!
wait_for 30 grep -q listening "$tmp/emb.out"
url="http://$(sed -n 's/^listening on //p' "$tmp/emb.out")"
cat >"$tmp/embfill.env" <<ENV
DATABASE_URL="$dsn"
EMBED_PROVIDER=tei
EMBED_URL=$url
EMBED_MODEL=bench
EMBED_DIM=$dim
BATCH_SIZE=100
EMBED_CONCURRENCY=8
HISTORYLOG=$tmp/history.md
ENV
cd "$tmp"
"$build/embfill" schema init --dim $dim >/dev/null
psql -q "$dsn" <<SQL
INSERT INTO documents (id, collection, title, body) VALUES (1, 'bench', 'bench', 'b');
INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
  SELECT g, 1, 'bench', g, 'chunk ' || g || ' of the benchmark corpus: ' ||
         repeat(md5(g::text) || ' words about embeddings and vectors ', 3)
  FROM generate_series(1, $chunks) g;
ANALYZE document_chunks;
SQL
index_sql="CREATE INDEX bench_hnsw ON document_embeddings USING hnsw (embedding vector_cosine_ops)"
# what embfill sets for its builds by default (INDEX_BUILD_MEMORY_MB, INDEX_BUILD_WORKERS)
build_sql="SET maintenance_work_mem = '1024MB'; SET max_parallel_maintenance_workers = 2"

timed() { # label command... -> prints, sets SECS
	label=$1; shift
	start=$(date +%s.%N)
	"$@" >"$tmp/timed.out" 2>&1 </dev/null || { cat "$tmp/timed.out" >&2; exit 1; }
	end=$(date +%s.%N)
	SECS=$(echo "$end - $start" | bc -l)
	printf '  %-58s %7.2f s\n' "$label" "$SECS"
}
reset() {
	psql -q "$dsn" -c "DROP INDEX IF EXISTS bench_hnsw; TRUNCATE document_embeddings;
		TRUNCATE embfill.runs CASCADE; CHECKPOINT" >/dev/null
}

echo "index bench: $chunks chunks of dimension $dim, HNSW (vector_cosine_ops, m=16,"
echo "ef_construction=64, the defaults); load: $(uptime | sed 's/.*load average: //')"
echo "(2 shared cores: an HNSW insert's cost varies with the machine's load)"
"$build/embfill" run -C bench --confirm bench >/dev/null 2>&1
psql -q "$dsn" -c "\\copy document_embeddings TO '$tmp/vectors.bin' (FORMAT binary)"

echo "COPY BINARY of the finished rows:"
reset
psql -q "$dsn" -c "$index_sql"
timed "into the table with its HNSW index" psql -q "$dsn" -c "\\copy document_embeddings FROM '$tmp/vectors.bin' (FORMAT binary)"
kept=$SECS
reset
timed "into the bare table" psql -q "$dsn" -c "\\copy document_embeddings FROM '$tmp/vectors.bin' (FORMAT binary)"
bare=$SECS
timed "then CREATE INDEX (maintenance_work_mem as embfill sets it)" psql -q "$dsn" -c "$build_sql; $index_sql"
printf '  load-then-build is %.1fx faster\n' "$(echo "$kept / ($bare + $SECS)" | bc -l)"

echo "embfill run, every chunk missing, the index on the table:"
reset
psql -q "$dsn" -c "$index_sql"
"$build/embfill" plan -C bench --json >"$tmp/plan.json" 2>/dev/null </dev/null || true
timed "the index kept" "$build/embfill" run -C bench --confirm bench
kept=$SECS
sed -n 's/^run .* in \([0-9.]*\) s (\([0-9]*\) chunks\/s).*/    \2 chunks\/s/p' "$tmp/timed.out"
reset
psql -q "$dsn" -c "$index_sql"
def1=$(psql -qAt "$dsn" -c "SELECT pg_get_indexdef('bench_hnsw'::regclass)")
timed "--rebuild-index (load, then CREATE INDEX CONCURRENTLY)" "$build/embfill" run -C bench \
	--confirm bench --rebuild-index
sed -n 's/^  \(vector indexes: .*\)/    \1/p' "$tmp/timed.out"
def2=$(psql -qAt "$dsn" -c "SELECT pg_get_indexdef('bench_hnsw'::regclass)")
printf '  --rebuild-index is %.1fx faster; the definition after it is %s\n' \
	"$(echo "$kept / $SECS" | bc -l)" "$([ "$def1" = "$def2" ] && echo the same || echo DIFFERENT)"
echo "what plan said of the table with its index and every chunk missing:"
sed -n 's/.*"rebuild_index_offered":[[:space:]]*\([a-z]*\).*/  rebuild offered: \1/p' "$tmp/plan.json"

# The probe against the real numbers: with the table full, every chunk's
# text revised (so that its new vector is another one, as a real edit's is).
revise() { psql -q "$dsn" -c "UPDATE document_chunks SET content = content || ' (revised $1)'"; }
revise 1
"$build/embfill" plan -C bench --json >"$tmp/plan.json" 2>/dev/null </dev/null || true
get() { sed -n "s/.*\"$1\":[[:space:]]*\\([0-9.e+-]*\\).*/\\1/p" "$tmp/plan.json" | head -n 1; }
printf '  plan, every text revised: writes with the index %.1f s, without %.1f s, build %.1f s\n' \
	"$(get write_with_seconds)" "$(get write_without_seconds)" "$(get build_seconds)"
est=$(get estimated_seconds)
timed "the index kept, every text revised" "$build/embfill" run -C bench --confirm bench
printf '  plan estimated %.1f s for this run (%.2f of the real time)\n' "${est:-0}" \
	"$(echo "${est:-0} / $SECS" | bc -l)"
revise 2
timed "--rebuild-index, every text revised" "$build/embfill" run -C bench --confirm bench --rebuild-index
sed -n 's/^  \(vector indexes: .*\)/    \1/p' "$tmp/timed.out"
