#!/bin/sh
# make bench: a million chunks in one collection.  Peak RSS of a run over
# it against a run over 100,000; status, plan and verify of the collection
# before and after its backfill, and verify with a few discrepancies; a
# run killed with SIGKILL and resumed, and how soon the resumed run's
# first batch reaches the service (counted by the sandbox service's
# /stats).  Numbers are printed, never asserted.
#   usage: million.sh BUILD_DIR
#   BENCH_MILLION_CHUNKS  chunks of the big collection (default 1000000)
#   BENCH_MILLION_DIM     vector dimension (default 128: a million vectors
#                         of 768 would write 3 GB and take a quarter of an
#                         hour on 2 shared cores; memory and the counts do
#                         not depend on it)
set -eu
build=$1
big=${BENCH_MILLION_CHUNKS:-1000000}
dim=${BENCH_MILLION_DIM:-128}
small=100000
here=$(cd "$(dirname "$0")" && pwd)
EF_TOP=$(cd "$here/../.." && pwd)
. "$EF_TOP/tests/lib/servers.sh"

tmp=$(mktemp -d /tmp/embfill-million.XXXXXX)
chmod 755 "$tmp"
EMB_PID=""; RUN_PID=""
cleanup() {
	[ -z "$RUN_PID" ] || stop_pid "$RUN_PID" KILL
	stop_pid "$EMB_PID" TERM
	servers_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

pg_start "$tmp"
dsn=$EF_TEST_PG_DSN
export PGOPTIONS="-c client_min_messages=warning"
"$build/embfill-embedder" --port 0 --dim "$dim" --model bench >"$tmp/emb.out" 2>&1 &
EMB_PID=$!
wait_for 30 grep -q listening "$tmp/emb.out"
url="http://$(sed -n 's/^listening on //p' "$tmp/emb.out")"
items() { curl -sf "$url/stats" | sed 's/.*"items":\([0-9]*\).*/\1/'; }

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
ef() { "$build/embfill" "$@"; }
ef schema init --dim "$dim" >/dev/null
start=$(date +%s.%N)
psql -q "$dsn" <<SQL
INSERT INTO documents (id, collection, title, body) VALUES (1, 'hundred', 'h', 'b'), (2, 'million', 'm', 'b');
INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
  SELECT g, 1, 'hundred', g, 'chunk ' || g || ' ' || md5(g::text) || ' words about vectors'
  FROM generate_series(1, $small) g;
INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
  SELECT $small + g, 2, 'million', g, 'chunk ' || g || ' ' || md5(g::text) || ' words about vectors'
  FROM generate_series(1, $big) g;
VACUUM ANALYZE;
SQL
printf 'million bench: %d + %d chunks, dimension %d, batch 100, concurrency 8 (loaded in %.0f s);\n' \
	"$small" "$big" "$dim" "$(echo "$(date +%s.%N) - $start" | bc -l)"
echo "load: $(uptime | sed 's/.*load average: //') (2 cores shared with other work)"

timed() { # label command...
	label=$1; shift
	start=$(date +%s.%N)
	"$@" >"$tmp/timed.out" 2>&1 </dev/null || { cat "$tmp/timed.out" >&2; exit 1; }
	printf '  %-44s %6.2f s\n' "$label" "$(echo "$(date +%s.%N) - $start" | bc -l)"
}
three() { # when
	echo "the collection of $big chunks, $1:"
	timed "status -C million" ef status -C million
	timed "plan -C million" ef plan -C million
	timed "verify -C million" sh -c "\"$build/embfill\" verify -C million || [ \$? -eq 1 ]"
}
three "nothing embedded yet"

run_rss() { # collection extra... -> RSS (KiB), RATE
	coll=$1; shift
	/usr/bin/time -o "$tmp/time.out" -f '%M' "$build/embfill" run -C "$coll" --confirm "$coll" "$@" \
		>"$tmp/run.out" 2>&1 </dev/null || { cat "$tmp/run.out" >&2; exit 1; }
	RSS=$(tail -n 1 "$tmp/time.out")
	RATE=$(sed -n 's/.*s (\([0-9]*\) chunks\/s).*/\1/p' "$tmp/run.out")
}
run_rss hundred
rss_small=$RSS
printf 'run over %d chunks: %s chunks/s, peak RSS %s KiB\n' "$small" "$RATE" "$RSS"

# The big run, killed with SIGKILL a third of the way, then resumed.
"$build/embfill" run -C million --confirm million >"$tmp/run1.out" 2>&1 </dev/null &
RUN_PID=$!
third=$((big / 3))
n=0
until [ "$(psql -qAt "$dsn" -c "SELECT coalesce(max(done), 0) FROM embfill.runs WHERE collection = 'million'")" -ge "$third" ]; do
	sleep 0.5; n=$((n + 1))
	[ "$n" -lt 2400 ] || { echo "million bench: the run never reached $third chunks" >&2; exit 1; }
done
# its peak RSS so far, as the kernel keeps it, read just before the kill
rss_killed=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$RUN_PID/status")
kill -KILL "$RUN_PID"
wait "$RUN_PID" 2>/dev/null || true
RUN_PID=""
done1=$(psql -qAt "$dsn" -c "SELECT done FROM embfill.runs WHERE collection = 'million'")
printf 'run over %d chunks killed with SIGKILL at %s done: peak RSS %s KiB\n' "$big" "$done1" "$rss_killed"

# a run's start sends the endpoint two probe texts (its reference
# vectors); the first batch is what comes after them
r0=$(( $(items) + 2 ))
start=$(date +%s.%N)
/usr/bin/time -o "$tmp/time.out" -f '%M' "$build/embfill" run -C million --confirm million --resume \
	>"$tmp/run.out" 2>&1 </dev/null &
RUN_PID=$!
first=""
while kill -0 "$RUN_PID" 2>/dev/null; do
	if [ "$(items)" -gt "$r0" ]; then
		first=$(echo "$(date +%s.%N) - $start" | bc -l)
		break
	fi
	sleep 0.01
done
wait "$RUN_PID" || { cat "$tmp/run.out" >&2; exit 1; }
RUN_PID=""
RSS=$(tail -n 1 "$tmp/time.out")
RATE=$(sed -n 's/.*s (\([0-9]*\) chunks\/s).*/\1/p' "$tmp/run.out")
printf 'run --resume: first batch at the service %.2f s after the start (target: within 1 s)\n' "${first:-0}"
printf 'the resumed run over the other %d chunks: %s chunks/s, peak RSS %s KiB\n' \
	"$((big - done1))" "$RATE" "$RSS"
printf 'peak RSS over the million against %d chunks: %.2f (killed run) and %.2f (resumed run);'\
' target within 10 %%\n' "$small" "$(echo "$rss_killed / $rss_small" | bc -l)" \
	"$(echo "$RSS / $rss_small" | bc -l)"
three "every chunk embedded"

# A few discrepancies of four kinds: verify's counts, then one more pass
# for the examples of the kinds found.
psql -q "$dsn" <<SQL
DELETE FROM document_embeddings WHERE chunk_id IN ($small + 500, $small + $big / 2, $small + $big - 1);
UPDATE document_chunks SET content = 'changed' WHERE id IN ($small + $big / 3, $small + $big * 9 / 10);
UPDATE document_embeddings SET model = 'older' WHERE chunk_id = $small + $big / 4;
SQL
echo "the collection of $big chunks, 6 discrepancies of 4 kinds planted:"
timed "verify -C million" sh -c "\"$build/embfill\" verify -C million; [ \$? -eq 1 ]"
