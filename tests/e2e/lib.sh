#!/bin/sh
# Helpers of the console's end-to-end tests, sourced by run.sh: a real
# PostgreSQL, the sandbox embedder, a seeded corpus, and tmux on a private
# socket at 80x24.  Waits poll the screen with a timeout; nothing sleeps to
# synchronise.  Every process is stopped by PID.
#
# Needs: EF_TOP, BUILD (absolute), tmp (a fresh directory).

. "$EF_TOP/tests/lib/servers.sh"

E2E_EMB_PID=""
COLL_CHUNKS=400

e2e_setup() {
	mkdir -p "$tmp/work" "$tmp/home"
	pg_start "$tmp" || return 1
	DSN=$EF_TEST_PG_DSN
	"$BUILD/embfill-embedder" --port 0 --dim 16 --model m1,m2 --latency-ms 150 \
		>"$tmp/embedder.log" 2>&1 &
	E2E_EMB_PID=$!
	wait_for 30 grep -q "listening on" "$tmp/embedder.log" || {
		echo "e2e: the sandbox embedder did not start" >&2
		cat "$tmp/embedder.log" >&2
		return 1
	}
	EMB_URL="http://$(sed -n 's/.*listening on //p' "$tmp/embedder.log" | head -n 1)"
	CONF="$tmp/work/embfill.env"
	HLOG="$tmp/work/agents/historylog.md"
	cat >"$CONF" <<ENV
DATABASE_URL="$DSN"
EMBED_PROVIDER=tei
EMBED_URL=$EMB_URL
EMBED_MODEL=m1
EMBED_DIM=16
EMBED_CONCURRENCY=2
EMBED_TIMEOUT_S=20
HISTORYLOG=$HLOG
ENV
	(cd "$tmp/work" && "$BUILD/embfill" --config "$CONF" schema init --dim 16) \
		>"$tmp/schema.log" 2>&1 || { cat "$tmp/schema.log" >&2; return 1; }
	sql >/dev/null <<SQL
INSERT INTO documents (id, collection, title, source_uri, body) VALUES
  (1, 'acme', 'Acme handbook', 'file:///srv/acme/handbook.md', 'a'),
  (2, 'tenant_42', 'Tenant 42 notes', 'file:///srv/t42.md', 'b'),
  (3, 'tenant_43', 'Tenant 43 notes', 'file:///srv/t43.md', 'c');
INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
  SELECT g, 1, 'acme', g, 'acme chunk ' || g || ' ' || md5(g::text) || ' about widgets and gears'
  FROM generate_series(1, $COLL_CHUNKS) g;
INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
  SELECT 1000 + g, 2, 'tenant_42', g, 'tenant forty-two ' || md5(g::text) FROM generate_series(1, 20) g;
INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
  SELECT 2000 + g, 3, 'tenant_43', g, 'tenant forty-three ' || md5(g::text) FROM generate_series(1, 20) g;
SQL
}

# reap PID: the console must be gone; it is waited for 10 s, then killed,
# with the sanitizer's leak-check tracer that may hold it at exit.
# Returns 1 when it had to be killed.
reap() {
	n=100
	while kill -0 "$1" 2>/dev/null && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	kill -0 "$1" 2>/dev/null || return 0
	tracer=$(awk '/^TracerPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || tracer=0
	kill -KILL "$1" 2>/dev/null
	[ "${tracer:-0}" = 0 ] || kill -KILL "$tracer" 2>/dev/null
	REAPED_TRACED=$([ "${tracer:-0}" = 0 ] && echo no || echo yes)
	return 1
}

# end_sessions: every session ends, and every console in one is reaped.
end_sessions() {
	[ -S "$tmp/sock" ] || return 0
	left=""
	for pp in $(tmux -S "$tmp/sock" list-panes -a -F '#{pane_pid}' 2>/dev/null); do
		left="$left $(ps -o pid= --ppid "$pp" | tr -d ' ')"
	done
	tmux -S "$tmp/sock" kill-server 2>/dev/null
	for p in $left; do
		reap "$p" || echo "    a console (pid $p) outlived its session; killed" >&2
	done
	return 0
}

e2e_teardown() {
	end_sessions
	stop_pid "$E2E_EMB_PID" TERM
	servers_stop
}

sql() { # psql with the test database; SQL from arguments or stdin
	if [ $# -gt 0 ]; then
		psql -X -q -A -t -v ON_ERROR_STOP=1 "$DSN" -c "$1"
	else
		psql -X -q -A -t -v ON_ERROR_STOP=1 "$DSN"
	fi
}

# Collection acme: 60 vectors of another model, 40 of outdated content,
# 300 chunks without a vector; no run on record.
reset_db() {
	sql >/dev/null <<'SQL'
TRUNCATE document_embeddings;
TRUNCATE embfill.runs RESTART IDENTITY CASCADE;
INSERT INTO document_embeddings (chunk_id, collection, model, dim, content_sha256, embedding, embedded_at)
  SELECT id, collection, CASE WHEN id <= 60 THEN 'm0' ELSE 'm1' END, 16,
         CASE WHEN id <= 60 THEN sha256(convert_to(content, 'UTF8')) ELSE sha256('old'::bytea) END,
         array_fill(1::real, ARRAY[16]), '2020-01-01'
  FROM document_chunks WHERE collection = 'acme' AND id <= 100;
SQL
	rm -f "$HLOG" "$tmp/work/plan.json"
}

tm() { tmux -S "$tmp/sock" "$@"; }

# start NAME [embfill args...]: the console in a new 80x24 session (E2E_W
# and E2E_H give another size).  Extra environment comes from E2E_ENV
# ("NO_COLOR=1"), the binary from E2E_BIN.
# A small sh waits for it and writes its exit status to $tmp/rc.NAME: tmux
# does not always reap a pane's process in time to report its status.
start() {
	name=$1; shift
	[ -f "$tmp/tmux.conf" ] || printf '%s\n' 'set -g remain-on-exit on' \
		'set -g default-terminal screen-256color' 'set -g history-limit 100' \
		>"$tmp/tmux.conf"
	rm -f "$tmp/rc.$name"
	tm -f "$tmp/tmux.conf" new-session -d -s "$name" -x "${E2E_W:-80}" -y "${E2E_H:-24}" \
		-c "$tmp/work" \
		sh -c 'rcf=$1; shift; "$@"; echo $? >"$rcf"' sh "$tmp/rc.$name" \
		env -i PATH="$PATH" HOME="$tmp/home" LC_ALL="${E2E_LC:-C.UTF-8}" TZ=UTC \
		TERM=screen-256color ESCDELAY=25 TSAN_OPTIONS="${TSAN_OPTIONS:-}" \
		${E2E_ENV:-} "${E2E_BIN:-$BUILD/embfill}" --config "$CONF" "$@"
	tm set-option -t "$name" window-size manual >/dev/null 2>&1
	tm resize-window -t "$name" -x "${E2E_W:-80}" -y "${E2E_H:-24}" >/dev/null 2>&1
}

screen() { tm capture-pane -p -t "$1"; }

# wait_text NAME TEXT [SECONDS]: until TEXT is on the screen; prints the
# screen and fails on timeout.
wait_text() {
	n=$(( ${3:-15} * 10 ))
	while [ "$n" -gt 0 ]; do
		screen "$1" 2>/dev/null | grep -qF -- "$2" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	echo "    timed out waiting for: $2" >&2
	screen "$1" | sed 's/^/    | /' >&2
	return 1
}

# wait_gone NAME TEXT [SECONDS]: until TEXT is no longer on the screen.
wait_gone() {
	n=$(( ${3:-15} * 10 ))
	while [ "$n" -gt 0 ]; do
		screen "$1" 2>/dev/null | grep -qF -- "$2" || return 0
		sleep 0.1
		n=$((n - 1))
	done
	echo "    still on the screen: $2" >&2
	screen "$1" | sed 's/^/    | /' >&2
	return 1
}

# no_text NAME TEXT: TEXT is not on the screen now.
no_text() {
	if screen "$1" | grep -qF -- "$2"; then
		echo "    unexpected on the screen: $2" >&2
		screen "$1" | sed 's/^/    | /' >&2
		return 1
	fi
}

keys() { name=$1; shift; tm send-keys -t "$name" "$@"; }
typ() { tm send-keys -t "$1" -l -- "$2"; }

# wait_exit NAME [SECONDS]: until the console ended; prints its exit status.
wait_exit() {
	n=$(( ${2:-30} * 10 ))
	while [ "$n" -gt 0 ]; do
		if [ -s "$tmp/rc.$1" ]; then
			cat "$tmp/rc.$1"
			return 0
		fi
		sleep 0.1
		n=$((n - 1))
	done
	echo "    timed out waiting for the console to exit" >&2
	screen "$1" | sed 's/^/    | /' >&2
	echo timeout
	return 1
}

# The console's PID: the child of the pane's sh (env execs it).
console_pid() { ps -o pid= --ppid "$(tm display-message -p -t "$1" '#{pane_pid}')" | tr -d ' '; }

# finish NAME: ends the session, and waits for its console to exit on the
# hangup.  One still there after 10 s is killed by its PID: a console that
# ignores its terminal closing fails the test; one held by the sanitizer's
# leak check at exit (its tracer caught the hangup too, and both wait
# forever) is only reported, since the program itself had ended.
finish() {
	fpid=$(console_pid "$1" 2>/dev/null) || fpid=""
	tm kill-session -t "$1" 2>/dev/null
	[ -n "$fpid" ] || return 0
	reap "$fpid" && return 0
	if [ "$REAPED_TRACED" = yes ]; then
		echo "    $1: the leak check at exit hung after the hangup; killed" >&2
		return 0
	fi
	echo "    $1: the console did not exit within 10 s of its terminal closing; killed" >&2
	return 1
}

# Step 1 on collection $2, typed twice, with batch size $3 (default 100).
scope() {
	wait_text "$1" "Step 1 - Scope" || return 1
	typ "$1" "$2"; keys "$1" Tab; typ "$1" "$2"
	if [ -n "${3:-}" ]; then
		keys "$1" Tab C-u; typ "$1" "$3"
	fi
	keys "$1" Enter
}

# Steps 2 and 3 with no warnings, up to step 4's start page.
to_run() {
	wait_text "$1" "Step 2 - Locate" || return 1
	wait_text "$1" "every check passed" || return 1
	keys "$1" Enter
	wait_text "$1" "plan written to" 30 || return 1
	keys "$1" Enter
	wait_text "$1" "Press s to start" || return 1
}

# Vectors of acme: "rows distinct fresh" (fresh: model m1, current content).
acme_counts() {
	sql "SELECT count(*), count(DISTINCT e.chunk_id),
	        count(*) FILTER (WHERE e.model = 'm1' AND e.content_sha256 = sha256(convert_to(c.content, 'UTF8')))
	     FROM document_embeddings e JOIN document_chunks c ON c.id = e.chunk_id
	     WHERE e.collection = 'acme'" | tr '|' ' '
}

# entry_line FILE HEADING FIELD: the "- **FIELD:** ..." line of the newest
# historylog entry whose heading matches HEADING (an awk pattern).
entry_line() {
	awk -v h="$2" -v f="- **$3:**" '
		/^## / { if (on) exit; on = ($0 ~ h) }
		on && index($0, f) == 1 { print; exit }' "$1"
}

# entry_command FILE HEADING: the reproducing command of that entry.
entry_command() {
	awk -v h="$2" '
		/^## / { if (on) exit; on = ($0 ~ h) }
		on && /^```sh$/ { cmd = 1; next }
		on && cmd && /^```/ { exit }
		on && cmd { print }' "$1"
}

# copy_collection NAME OFFSET: a collection with acme's documents and
# chunks (ids moved by OFFSET), so that two front ends can work on twins.
copy_collection() {
	sql >/dev/null <<SQL
INSERT INTO documents (id, collection, title, source_uri, body)
  SELECT id + $2, '$1', title, source_uri, body FROM documents WHERE collection = 'acme';
INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
  SELECT id + $2, document_id + $2, '$1', chunk_index, content FROM document_chunks
  WHERE collection = 'acme';
SQL
}
