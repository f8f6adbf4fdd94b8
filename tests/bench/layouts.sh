#!/bin/sh
# make bench: what serving a framework's table costs.  The same chunks are
# embedded into embfill's default layout (model and hash columns in the
# table) and into a LangChain PGVector table (text keys, a lookup table for
# the collection, the vector in the chunk's row, and the model, hash and
# recipe in embfill's bookkeeping table, written in the same transaction).
# Chunks per second of each, and the bookkeeping's cost.  Printed, never
# asserted.
#   usage: layouts.sh BUILD_DIR [CHUNKS]
set -eu
build=$1
chunks=${2:-${BENCH_LAYOUT_CHUNKS:-20000}}
dim=768
here=$(cd "$(dirname "$0")" && pwd)
EF_TOP=$(cd "$here/../.." && pwd)
. "$EF_TOP/tests/lib/servers.sh"

tmp=$(mktemp -d /tmp/embfill-bench-layouts.XXXXXX)
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
"$build/embfill-embedder" --port 0 --dim $dim --model bench >"$tmp/emb.out" 2>&1 &
EMB_PID=$!
wait_for 30 grep -q listening "$tmp/emb.out"
url="http://$(sed -n 's/^listening on //p' "$tmp/emb.out")"
vec=real[]
if [ "$(psql -XAtq "$dsn" -c "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")" = 1 ]; then
	psql -Xq "$dsn" -c "CREATE EXTENSION IF NOT EXISTS vector"
	vec=vector
fi

common="DATABASE_URL=\"$dsn\"
EMBED_PROVIDER=ollama
EMBED_URL=$url
EMBED_MODEL=bench
EMBED_DIM=$dim
BATCH_SIZE=100
EMBED_CONCURRENCY=2
HISTORYLOG=$tmp/history.md"
printf '%s\nEMBFILL_SCHEMA=embfill\n' "$common" >"$tmp/default.env"
printf '%s\nEMBFILL_SCHEMA=embfill_lc\nSCHEMA_LAYOUT=inline\nCOLLECTION_MODE=lookup
COLLECTIONS_TABLE=lc.langchain_pg_collection\nCOLLECTIONS_KEY_COLUMN=uuid
COLLECTIONS_NAME_COLUMN=name\nCHUNKS_TABLE=lc.langchain_pg_embedding\nCHUNKS_ID_COLUMN=id
CHUNKS_COLLECTION_COLUMN=collection_id\nCHUNKS_CONTENT_COLUMN=document
CHUNKS_DOCUMENT_COLUMN=\nCHUNKS_INDEX_COLUMN=\nDOCUMENTS_TABLE=
EMBEDDINGS_VECTOR_COLUMN=embedding\nEMBEDDINGS_MODEL_COLUMN=\nEMBEDDINGS_HASH_COLUMN=
EMBEDDINGS_DIM_COLUMN=\nEMBEDDINGS_AT_COLUMN=\nEMBEDDINGS_RUN_COLUMN=\n' "$common" >"$tmp/lc.env"

"$build/embfill" --config "$tmp/default.env" schema init --dim $dim >/dev/null
psql -Xq "$dsn" <<SQL
INSERT INTO documents (id, collection, title, body) VALUES (1, 'bench', 'bench', 'b');
INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
  SELECT g, 1, 'bench', g, 'bench chunk ' || g || ' about the cost of bookkeeping'
  FROM generate_series(1, $chunks) g;
CREATE SCHEMA lc;
CREATE TABLE lc.langchain_pg_collection (uuid uuid PRIMARY KEY, name varchar NOT NULL UNIQUE,
  cmetadata json);
CREATE TABLE lc.langchain_pg_embedding (id varchar PRIMARY KEY, collection_id uuid
  REFERENCES lc.langchain_pg_collection (uuid) ON DELETE CASCADE, embedding $vec,
  document varchar, cmetadata jsonb);
INSERT INTO lc.langchain_pg_collection VALUES (gen_random_uuid(), 'bench', '{}');
INSERT INTO lc.langchain_pg_embedding (id, collection_id, document, cmetadata)
  SELECT gen_random_uuid()::text, c.uuid, 'bench chunk ' || g || ' about the cost of bookkeeping',
  '{}' FROM lc.langchain_pg_collection c, generate_series(1, $chunks) g;
VACUUM ANALYZE;
SQL
"$build/embfill" --config "$tmp/lc.env" schema init >/dev/null

rate() { # env -> chunks/s of a whole run
	"$build/embfill" --config "$1" run -C bench --confirm bench 2>/dev/null |
		sed -n 's/.* in \([0-9.]*\) s (\([0-9]*\) chunks\/s).*/\2/p'
}
echo "layouts: $chunks chunks, dimension $dim ($vec), batch 100, concurrency 2, a 0 ms service"
d=$(rate "$tmp/default.env")
l=$(rate "$tmp/lc.env")
echo "  default layout (model and hash columns):          $d chunks/s"
echo "  LangChain table (text keys, lookup, bookkeeping): $l chunks/s"
echo "  the framework table costs $(echo "scale=1; 100 * ($d - $l) / $d" | bc) % of the default layout's throughput"
