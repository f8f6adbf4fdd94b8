#!/bin/sh
# End-to-end tests of the operator console: the real program in tmux at
# 80x24, driven with send-keys and read with capture-pane, against a real
# PostgreSQL 15 and the sandbox embedder.  Assertions are on the screen at
# every step, then on the database and the historylog.
#
#   usage: sh tests/e2e/run.sh BUILD_DIR [TEST...]
#
# With build-thread/embfill present (make SANITIZE=thread), the run test is
# repeated under ThreadSanitizer.
set -u

BUILD=$(cd "${1:?usage: run.sh BUILD_DIR [TEST...]}" && pwd); shift
here=$(cd "$(dirname "$0")" && pwd)
EF_TOP=$(cd "$here/../.." && pwd)
TSAN_BUILD="$EF_TOP/build-thread"

tmp=$(mktemp -d /tmp/embfill-e2e.XXXXXX)
chmod 755 "$tmp"
. "$here/lib.sh"

# Copies, so that a rebuild in the tree meanwhile cannot swap a binary
# under a running test.
mkdir -p "$tmp/bin" "$tmp/bin-thread"
cp "$BUILD/embfill" "$BUILD/embfill-embedder" "$tmp/bin/" || exit 1
[ -x "$TSAN_BUILD/embfill" ] && cp "$TSAN_BUILD/embfill" "$tmp/bin-thread/"
BUILD="$tmp/bin"
TSAN_BUILD="$tmp/bin-thread"

cleanup() {
	e2e_teardown
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

export LC_ALL=C.UTF-8 TZ=UTC HOME="$tmp/home" TERM=screen-256color ESCDELAY=25
export PGOPTIONS="-c client_min_messages=warning"
unset NO_COLOR

cli() { (cd "$tmp/work" && "$BUILD/embfill" --config "$CONF" "$@"); }

# Step 3: in place (a model change preselects a new collection: m twice
# goes new -> dry run -> in place), accept the plan's warnings when it has
# any, then on to step 4.
plan_on() {
	wait_text "$1" "Step 3 - Plan" 30 || return 1
	n=300
	while [ $n -gt 0 ]; do
		s=$(screen "$1")
		case $s in
		*"plan ready"*) break ;;
		*"the plan has warnings"*) keys "$1" a; wait_text "$1" "accepted" || return 1; break ;;
		*"[FAIL]"*) printf '%s\n' "$s" | sed 's/^/    | /' >&2; return 1 ;;
		esac
		sleep 0.1; n=$((n - 1))
	done
	keys "$1" End
	wait_text "$1" "Backup (k changes)" || return 1
	if screen "$1" | grep -qF "(*) new collection"; then
		keys "$1" m m
		wait_text "$1" "(*) in place" || return 1
	fi
	keys "$1" Enter
	wait_text "$1" "Press s to start" || return 1
}

locate_on() {
	wait_text "$1" "Step 2 - Locate" || return 1
	wait_text "$1" "[x] 2 Locate" || return 1
	wait_text "$1" " ok, 0 warnings, 0 failed" || return 1
	keys "$1" Enter
}

# --- tests -------------------------------------------------------------------

# The whole procedure, step 1 to a written historylog entry; then verify.
t_whole_session() {
	reset_db
	start s tui
	wait_text s "[>] 1 Scope" || return 1
	wait_text s "acme                     400     300    100     0.0%" || return 1
	keys s NPage
	wait_text s "Assumptions" || return 1
	wait_text s "no provider switch" || return 1
	keys s PPage
	scope s acme || return 1
	locate_on s || return 1
	plan_on s || return 1
	wait_text s "[!] 3 Plan" || return 1
	keys s '?'
	wait_text s "Help" || return 1
	wait_text s "cancel the run after a confirmation" || return 1
	keys s Escape
	keys s s
	wait_text s "run completed" 60 || return 1
	wait_text s "400/400 chunks" || return 1
	wait_text s "[x] 4 Run" || return 1
	keys s Enter
	wait_text s "Step 5 - Validate" || return 1
	wait_text s "they match" 30 || return 1
	wait_text s "self-retrieval 5/5" || return 1
	wait_text s "Acme handbook" || return 1
	keys s Enter
	wait_text s "Step 6 - Summary" || return 1
	wait_text s "How to verify" || return 1
	keys s End
	wait_text s "Reproduce headless" || return 1
	wait_text s "Accepted warnings" || return 1
	keys s Home
	keys s w
	wait_text s "entry written at the top of" || return 1
	wait_text s "[x] 6 Summary" || return 1
	keys s q
	rc=$(wait_exit s) || return 1
	[ "$rc" = 0 ] || { echo "    exit status $rc, expected 0" >&2; return 1; }
	grep -q "^## .* - acme - run " "$HLOG" || { echo "    no entry in $HLOG" >&2; return 1; }
	grep -q "Accepted warnings" "$HLOG" || { echo "    no accepted warnings" >&2; return 1; }
	grep -q 'run -C acme --confirm acme' "$HLOG" || return 1
	[ -s "$tmp/work/plan.json" ] || { echo "    no plan.json" >&2; return 1; }
	cli verify -C acme >"$tmp/verify.out" 2>&1 || { cat "$tmp/verify.out" >&2; return 1; }
	[ "$(acme_counts)" = "400 400 400" ] || { echo "    counts $(acme_counts)" >&2; return 1; }
	finish s
}

t_confirmation_mismatch_refused() {
	start m tui
	wait_text m "Step 1 - Scope" || return 1
	typ m acme; keys m Tab; typ m acme_; keys m Enter
	wait_text m 'the names differ ("acme" and "acme_"): refused, both fields' || return 1
	wait_text m "Collection      [_]" || return 1
	wait_text m "Type it again   []" || return 1
	wait_text m "[>] 1 Scope" || return 1
	no_text m "Step 2 - Locate" || return 1
	keys m Escape
	rc=$(wait_exit m) || return 1
	[ "$rc" = 0 ] || return 1
	finish m
}

t_unknown_collection_refused() {
	start u tui
	wait_text u "Step 1 - Scope" || return 1
	typ u acne; keys u Tab; typ u acne; keys u Enter
	wait_text u 'unknown collection "acne": it has no chunks; refused' || return 1
	wait_text u 'did you mean "acme"' || return 1
	wait_text u "Collection      [_]" || return 1
	no_text u "Step 2 - Locate" || return 1
	finish u
}

t_near_miss_warned() {
	start n tui
	wait_text n "Step 1 - Scope" || return 1
	typ n tenant_42; keys n Tab; typ n tenant_42; keys n Enter
	wait_text n '"tenant_42" is a typo away from the existing collection' || return 1
	wait_text n '"tenant_43"' || return 1
	no_text n "Step 2 - Locate" || return 1
	keys n a
	wait_text n "Step 2 - Locate" || return 1
	wait_text n "[!] 1 Scope" || return 1
	finish n
}

# A collection named to clear the screen: the console draws the escape as
# the text \x1b, in the list and in the message naming the near name, and
# the screen around it stays.
t_hostile_name_drawn_as_escapes() {
	sql >/dev/null <<'SQL'
INSERT INTO documents (id, collection, title, body) VALUES (900001, E'a\x1b[2J', 't', 'b');
INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
  VALUES (900001, 900001, E'a\x1b[2J', 0, 'x');
SQL
	hostile_steps; rc=$?
	finish h
	sql >/dev/null <<'SQL'
DELETE FROM document_chunks WHERE id = 900001;
DELETE FROM documents WHERE id = 900001;
SQL
	return $rc
}

hostile_steps() {
	start h tui
	wait_text h "Step 1 - Scope" || return 1
	wait_text h 'a\x1b[2J' || return 1
	typ h 'a[2J'; keys h Tab; typ h 'a[2J'; keys h Enter
	wait_text h 'did you mean' || return 1
	wait_text h '"a\x1b[2J"?)' || return 1
	wait_text h "Collections (read the name here" || return 1
	wait_text h "[>] 1 Scope" || return 1
}

# Holds embfill.runs locked from a psql session of its own, so that a run
# cannot begin (and report) until unlock: what the console shows before
# the engine's first report stays on the screen meanwhile.
lock_runs() {
	rm -f "$tmp/lock.fifo"
	mkfifo "$tmp/lock.fifo"
	psql -X -q -v ON_ERROR_STOP=1 "$DSN" <"$tmp/lock.fifo" >"$tmp/lock.log" 2>&1 &
	LOCK_PID=$!
	exec 7>"$tmp/lock.fifo"
	echo "BEGIN; LOCK TABLE embfill.runs IN ACCESS EXCLUSIVE MODE;" >&7
	wait_for 10 sh -c "[ \"\$(psql -X -A -t \"$DSN\" -c \"SELECT count(*) FROM pg_locks
		WHERE relation = 'embfill.runs'::regclass AND mode = 'AccessExclusiveLock'
		AND granted\")\" = 1 ]"
}

unlock_runs() {
	echo "COMMIT;" >&7
	exec 7>&-
	wait "$LOCK_PID" 2>/dev/null
}

# Cancel mid-run, leave without the entry (exit 5), then resume from a new
# console to an exact end: the resumed run shows where it goes on from the
# start, and its entry is written on the way out.
t_cancel_then_resume() {
	reset_db
	start c tui
	scope c acme 5 || return 1
	locate_on c || return 1
	plan_on c || return 1
	keys c s
	wait_text c "phase embedding" 30 || return 1
	keys c c
	wait_text c "Cancel the run?" || return 1
	keys c y
	wait_text c "run 1 interrupted" 30 || return 1
	wait_text c "[-] 4 Run" || return 1
	keys c q
	wait_text c "Leave without the historylog entry?" || return 1
	keys c l
	rc=$(wait_exit c) || return 1
	[ "$rc" = 5 ] || { echo "    exit status $rc, expected 5" >&2; return 1; }
	tm capture-pane -p -S - -t c | grep -qF \
		"the historylog entry of run 1 was not written (left without it)" || {
		echo "    no word of the unwritten entry:" >&2
		tm capture-pane -p -S - -t c | sed 's/^/    | /' >&2; return 1; }
	[ ! -s "$HLOG" ] || { echo "    an entry was written" >&2; return 1; }
	set -- $(acme_counts)
	[ "$1" = "$2" ] || { echo "    duplicates after cancel: $*" >&2; return 1; }
	[ "$3" -lt 400 ] || { echo "    the cancel came too late: $*" >&2; return 1; }
	finish c
	ckpt=$(sql "SELECT array_to_string(checkpoint_key, '/') FROM embfill.runs WHERE id = 1")
	start r tui
	scope r acme || return 1
	wait_text r "Resume the interrupted run?" || return 1
	wait_text r "Run 1 of" || return 1
	keys r y
	wait_text r "run 1 will be resumed in step 4" || return 1
	wait_text r "resume run 1" || return 1
	locate_on r || return 1
	plan_on r || return 1
	wait_text r "Ready to resume" || return 1
	lock_runs || return 1
	keys r s
	wait_text r "resuming the interrupted run" || { unlock_runs; return 1; }
	wait_text r "checkpoint: chunk $ckpt," || { unlock_runs; return 1; }
	no_text r "checkpoint: none yet" || { unlock_runs; return 1; }
	unlock_runs
	wait_text r "run completed" 60 || return 1
	wait_text r "run 1 completed" || return 1
	keys r q
	wait_text r "Leave without the historylog entry?" || return 1
	keys r w
	rc=$(wait_exit r) || return 1
	[ "$rc" = 0 ] || { echo "    exit status $rc, expected 0" >&2; return 1; }
	grep -q "^## .* - acme - run 1" "$HLOG" || { echo "    no entry of run 1" >&2; return 1; }
	[ "$(acme_counts)" = "400 400 400" ] || { echo "    counts $(acme_counts)" >&2; return 1; }
	[ "$(sql "SELECT count(*) FROM embfill.runs")" = 1 ] || return 1
	[ "$(sql "SELECT state FROM embfill.runs")" = completed ] || return 1
	cli verify -C acme >/dev/null 2>&1 || return 1
	finish r
}

# A paused run shows no rate and no ETA; below 80x24 the keys that must
# work blind still do (p pauses and resumes), every other key is answered
# rather than dropped, and the screen comes back whole at 120x40 and 80x24.
t_resize_during_run() {
	reset_db
	start z tui
	scope z acme 5 || return 1
	locate_on z || return 1
	plan_on z || return 1
	keys z s
	wait_text z "phase embedding" 30 || return 1
	keys z p
	wait_text z "paused (p resumes)" || return 1
	wait_text z "phase paused" || return 1
	no_text z "ETA" || return 1
	tm resize-window -t z -x 60 -y 20
	wait_text z "terminal too small: 60x20" || return 1
	keys z p
	wait_text z "resumed" || return 1
	keys z x
	wait_text z '"x" was not taken: enlarge the terminal first' || return 1
	keys z p
	wait_text z "paused: no new request starts" || return 1
	tm resize-window -t z -x 120 -y 40
	wait_text z "Overall" || return 1
	wait_text z "paused (p resumes)" || return 1
	[ "$(screen z | head -n 1 | grep -c 'step 4/6: Run *$')" = 1 ] || return 1
	[ "$(screen z | wc -l)" = 40 ] || return 1
	keys z p
	wait_text z "ETA" || return 1
	tm resize-window -t z -x 80 -y 24
	wait_text z "run completed" 60 || return 1
	wait_text z "400/400 chunks" || return 1
	keys z q
	wait_text z "Leave without the historylog entry?" || return 1
	keys z l
	rc=$(wait_exit z) || return 1
	[ "$rc" = 0 ] || return 1
	finish z
}

t_sighup_during_run_is_resumable() {
	reset_db
	start h tui
	scope h acme 5 || return 1
	locate_on h || return 1
	plan_on h || return 1
	keys h s
	wait_text h "phase embedding" 30 || return 1
	pid=$(console_pid h)
	[ -n "$pid" ] || return 1
	kill -HUP "$pid"
	rc=$(wait_exit h 30) || return 1
	[ "$rc" = 5 ] || { echo "    exit status $rc, expected 5" >&2; return 1; }
	[ "$(sql "SELECT state FROM embfill.runs")" = interrupted ] || {
		echo "    run state $(sql "SELECT state FROM embfill.runs")" >&2; return 1; }
	set -- $(acme_counts)
	[ "$1" = "$2" ] || return 1
	cli run -C acme --confirm acme --resume </dev/null >"$tmp/resume.out" 2>&1 || {
		cat "$tmp/resume.out" >&2; return 1; }
	[ "$(acme_counts)" = "400 400 400" ] || { echo "    counts $(acme_counts)" >&2; return 1; }
	finish h
}

has_color() { tm capture-pane -e -p -t "$1" | grep -q "$(printf '\033')\[[0-9;]*\(3[0-7]\|38;5\|9[0-7]\)[;m]"; }

t_no_color() {
	start k1 tui
	wait_text k1 "Step 1 - Scope" || return 1
	has_color k1 || { echo "    control: no colour even without NO_COLOR" >&2; return 1; }
	finish k1
	E2E_ENV="NO_COLOR=1" start k2 tui
	wait_text k2 "Step 1 - Scope" || return 1
	scope k2 acme || return 1
	wait_text k2 "every check passed" || return 1
	if has_color k2; then echo "    colour escapes with NO_COLOR" >&2; return 1; fi
	finish k2
	start k3 --no-color
	wait_text k3 "Step 1 - Scope" || return 1
	if has_color k3; then echo "    colour escapes with --no-color" >&2; return 1; fi
	finish k3
}

only_ascii() {
	if screen "$1" | LC_ALL=C grep -q '[^ -~]'; then
		echo "    non-ASCII on the screen:" >&2
		screen "$1" | LC_ALL=C grep '[^ -~]' | head -n 3 | sed 's/^/    | /' >&2
		return 1
	fi
}

t_ascii() {
	start a1 --ascii tui
	wait_text a1 "Step 1 - Scope" || return 1
	wait_text a1 "Checklist          |" || return 1
	only_ascii a1 || return 1
	scope a1 acme || return 1
	wait_text a1 "every check passed" || return 1
	only_ascii a1 || return 1
	finish a1
	E2E_LC=C start a2 tui
	wait_text a2 "Step 1 - Scope" || return 1
	only_ascii a2 || return 1
	finish a2
}

# The run test again, with ThreadSanitizer watching the worker bridge.
t_tsan_run() {
	[ -x "$TSAN_BUILD/embfill" ] || { echo "    no build-thread/embfill: make SANITIZE=thread" >&2; return 1; }
	reset_db
	rm -f "$tmp"/tsan.*
	E2E_BIN="$TSAN_BUILD/embfill" TSAN_OPTIONS="halt_on_error=1 log_path=$tmp/tsan" start t tui
	scope t acme 20 || return 1
	locate_on t || return 1
	plan_on t || return 1
	keys t s
	wait_text t "phase embedding" 30 || return 1
	keys t p
	wait_text t "paused" || return 1
	keys t p
	wait_text t "run completed" 90 || return 1
	keys t Enter
	wait_text t "they match" 60 || return 1
	keys t q
	wait_text t "Leave without the historylog entry?" || return 1
	keys t w
	rc=$(wait_exit t 60) || return 1
	if ls "$tmp"/tsan.* >/dev/null 2>&1; then
		head -n 40 "$tmp"/tsan.* >&2; return 1
	fi
	[ "$rc" = 0 ] || { echo "    exit status $rc" >&2; return 1; }
	[ "$(acme_counts)" = "400 400 400" ] || return 1
	finish t
}

# A model change walked through the console: the plan recommends and
# preselects a new collection, the run makes and embeds it, validation
# checks it, and x swaps it in on the live name typed again.
t_model_change_through_a_new_collection() {
	reset_db
	cli run -C acme --confirm acme >"$tmp/pre.out" 2>&1 || { cat "$tmp/pre.out" >&2; return 1; }
	E2E_ENV="EMBED_MODEL=m2" start n tui
	scope n acme || return 1
	wait_text n "Step 2 - Locate" || return 1
	wait_text n "[x] 2 Locate" 30 || return 1
	keys n Enter
	wait_text n "Step 3 - Plan" 30 || return 1
	wait_text n "model change" 30 || return 1
	keys n End
	wait_text n "(*) new collection (recommended)" || return 1
	wait_text n 'the new collection is "acme_next"' || return 1
	keys n a
	wait_text n "accepted" || return 1
	keys n Enter
	wait_text n 'Ready to copy the new collection "acme_next"' || return 1
	keys n s
	wait_text n "run completed" 60 || return 1
	wait_text n 'copied 1 documents into 400 chunks of "acme_next"' || return 1
	keys n Enter
	wait_text n 'Step 5 - Validate: "acme_next"' || return 1
	wait_text n "they match" 30 || return 1
	keys n Enter
	wait_text n 'Step 6 - Summary: "acme_next"' || return 1
	wait_text n "x swap " || return 1
	wait_text n 'model change: 400 of 400 vectors were made by "m1",' || return 1
	wait_text n 'so the path was a new collection: readers of "acme"' || return 1
	no_text n "400 chunks had no vector" || return 1
	keys n x
	wait_text n "to confirm" || return 1
	typ n "acmx"; keys n Enter
	wait_text n "nothing was swapped" || return 1
	keys n x
	wait_text n "to confirm" || return 1
	typ n "acme"; keys n Enter
	wait_text n "now holds what was \"acme_next\"" 30 || return 1
	wait_text n 'then the swap put "acme_next" in "acme"'"'"'s place in' || return 1
	keys n w
	wait_text n "entry written at the top of" || return 1
	keys n q
	rc=$(wait_exit n) || return 1
	[ "$rc" = 0 ] || { echo "    exit status $rc, expected 0" >&2; return 1; }
	got=$(sql "SELECT count(*) FILTER (WHERE model = 'm2'), count(*) FROM document_embeddings
		   WHERE collection = 'acme'" | tr '|' ' ')
	[ "$got" = "400 400" ] || { echo "    acme after the swap: $got" >&2; return 1; }
	got=$(sql "SELECT count(*) FROM document_embeddings WHERE collection LIKE 'acme__prev_%'
		   AND model = 'm1'")
	[ "$got" = 400 ] || { echo "    the previous acme: $got m1 vectors" >&2; return 1; }
	grep -q 'took the name "acme"' "$HLOG" || { echo "    no swap entry" >&2; return 1; }
	grep -q -- '--into acme_next' "$HLOG" || { echo "    no run entry with --into" >&2; return 1; }
	cli rollback -C acme >"$tmp/rb.out" 2>&1 || { cat "$tmp/rb.out" >&2; return 1; }
	got=$(sql "SELECT count(*) FROM document_embeddings WHERE collection = 'acme' AND model = 'm1'")
	[ "$got" = 400 ] || { echo "    after rollback: $got" >&2; return 1; }
	finish n
}

# The same model change through the console (on alpha) and through the
# command line (on beta, its twin): both write the same vectors, the same
# historylog fields and the same reproducing commands, and the console's
# commands rerun as written.
t_console_and_command_line_agree() {
	reset_db
	copy_collection alpha 100000 && copy_collection beta 200000 || return 1
	cli run -C alpha --confirm alpha >"$tmp/pre.out" 2>&1 || { cat "$tmp/pre.out" >&2; return 1; }
	cli run -C beta --confirm beta >>"$tmp/pre.out" 2>&1 || { cat "$tmp/pre.out" >&2; return 1; }
	E2E_ENV="EMBED_MODEL=m2" start g tui
	scope g alpha || return 1
	wait_text g "[x] 2 Locate" 30 || return 1
	keys g Enter
	wait_text g "model change" 30 || return 1
	keys g a
	wait_text g "accepted" || return 1
	keys g Enter
	wait_text g 'Ready to copy the new collection "alpha_next"' || return 1
	keys g s
	wait_text g "run completed" 60 || return 1
	keys g Enter
	wait_text g "they match" 30 || return 1
	keys g Enter
	wait_text g 'Step 6 - Summary: "alpha_next"' || return 1
	keys g x
	wait_text g "Type the live" || return 1
	typ g alpha; keys g Enter
	wait_text g "now holds what was \"alpha_next\"" 30 || return 1
	keys g w
	wait_text g "entry written at the top of" || return 1
	keys g q
	rc=$(wait_exit g) || return 1
	[ "$rc" = 0 ] || { echo "    console exit status $rc" >&2; return 1; }
	(export EMBED_MODEL=m2
	 cli run -C beta --confirm beta --into beta_next --historylog </dev/null &&
	 cli swap -C beta --with beta_next --confirm beta) >"$tmp/cli.out" 2>&1 || {
		cat "$tmp/cli.out" >&2; return 1; }
	vecs() {
		sql "SELECT string_agg(c.chunk_index || ':' || e.model || ':' || md5(e.embedding::text),
		     ',' ORDER BY c.chunk_index) FROM document_embeddings e JOIN document_chunks c
		     ON c.id = e.chunk_id AND c.collection = e.collection WHERE e.collection = '$1'"
	}
	a=$(vecs alpha) b=$(vecs beta)
	[ -n "$a" ] && [ "$a" = "$b" ] || { echo "    the vectors differ" >&2; return 1; }
	case $a in *:m1:*) echo "    alpha still holds m1 vectors" >&2; return 1 ;; esac
	for f in Outcome Embedding Batching Before After; do
		x=$(entry_line "$HLOG" " - alpha_next - run " "$f" | sed 's/alpha/X/g')
		y=$(entry_line "$HLOG" " - beta_next - run " "$f" | sed 's/beta/X/g')
		[ -n "$x" ] && [ "$x" = "$y" ] || {
			printf '    %s differs:\n      console: %s\n      cli:     %s\n' "$f" "$x" "$y" >&2
			return 1; }
	done
	x=$(entry_line "$HLOG" " - alpha_next - run " Verification | cut -d';' -f1 | sed 's/alpha/X/g')
	y=$(entry_line "$HLOG" " - beta_next - run " Verification | cut -d';' -f1 | sed 's/beta/X/g')
	[ "$x" = "$y" ] || { printf '    verification: %s / %s\n' "$x" "$y" >&2; return 1; }
	for h in " - alpha_next - run | - beta_next - run " " - alpha - swap | - beta - swap "; do
		x=$(entry_command "$HLOG" "${h%|*}" | sed 's/alpha/X/g')
		y=$(entry_command "$HLOG" "${h#*|}" | sed 's/beta/X/g')
		[ -n "$x" ] && [ "$x" = "$y" ] || {
			printf '    commands differ:\n      console: %s\n      cli:     %s\n' "$x" "$y" >&2
			return 1; }
	done
	run=$(entry_command "$HLOG" " - alpha_next - run ")
	swp=$(entry_command "$HLOG" " - alpha - swap ")
	(cd "$tmp/work" && export EMBED_MODEL=m2 PATH="$BUILD:$PATH" &&
	 sh -c "$run" </dev/null && sh -c "$swp") >"$tmp/rerun.out" 2>&1 || {
		echo "    the console's commands did not rerun as written:" >&2
		sed 's/^/    | /' "$tmp/rerun.out" >&2; return 1; }
	finish g
}

# --- leaving, messages and dialogs: at 80x24 and at 120x40 -------------------

# at_sizes TEST: TEST NAME at 80x24, then at 120x40.
at_sizes() {
	"$1" "${2}80" || return 1
	finish "${2}80"
	E2E_W=120 E2E_H=40 "$1" "${2}120" || return 1
	finish "${2}120"
}

# Step 6 before w: q, Esc and Ctrl-C each ask (write it / leave without /
# stay), staying keeps all, and w writes the entry on the way out; earlier,
# nothing said the accepted warnings were written already.
unwritten_entry() { # name
	reset_db
	start "$1" tui
	scope "$1" acme || return 1
	locate_on "$1" || return 1
	wait_text "$1" "the plan has warnings" 30 || return 1
	keys "$1" a
	wait_text "$1" "plan warnings accepted: they go into the run's historylog entry" || return 1
	no_text "$1" "written to the historylog" || return 1
	keys "$1" End
	wait_text "$1" "(*) new collection" || return 1
	keys "$1" m m
	wait_text "$1" "(*) in place" || return 1
	keys "$1" Enter
	wait_text "$1" "Press s to start" || return 1
	keys "$1" s
	wait_text "$1" "run completed" 60 || return 1
	keys "$1" Enter
	wait_text "$1" "they match" 30 || return 1
	keys "$1" Enter
	wait_text "$1" "Step 6 - Summary" || return 1
	keys "$1" q
	wait_text "$1" "Leave without the historylog entry?" || return 1
	wait_text "$1" "The historylog entry of run 1 is not written yet" || return 1
	wait_text "$1" "w write it, then leave  l leave without it  Esc stay" || return 1
	keys "$1" Escape
	wait_text "$1" "still here: step 6 shows the entry, and w writes it" || return 1
	no_text "$1" "Leave without the historylog entry?" || return 1
	keys "$1" Escape
	wait_text "$1" "Leave without the historylog entry?" || return 1
	keys "$1" Escape
	wait_text "$1" "still here" || return 1
	kill -INT "$(console_pid "$1")"
	wait_text "$1" "Leave without the historylog entry?" || return 1
	[ ! -s "$HLOG" ] || { echo "    an entry was written before w" >&2; return 1; }
	keys "$1" w
	rc=$(wait_exit "$1") || return 1
	[ "$rc" = 0 ] || { echo "    exit status $rc, expected 0" >&2; return 1; }
	grep -q "^## .* - acme - run 1" "$HLOG" || { echo "    no entry in $HLOG" >&2; return 1; }
	grep -q "Accepted warnings" "$HLOG" || { echo "    no accepted warnings" >&2; return 1; }
}

t_leaving_asks_for_the_unwritten_entry() { at_sizes unwritten_entry w; }

# Every way out (Esc, q, Ctrl-C) asks when something would be lost, and
# only then; each footer names the quit key that acts on its step.
ways_out() { # name
	reset_db
	start "$1" tui
	wait_text "$1" "Step 1 - Scope" || return 1
	wait_text "$1" "Tab field  F1 help  Esc quit" || return 1
	typ "$1" acme
	keys "$1" Escape
	wait_text "$1" "Leave the console?" || return 1
	wait_text "$1" "What was typed and chosen here is not kept" || return 1
	keys "$1" n
	wait_gone "$1" "Leave the console?" || return 1
	wait_text "$1" "Collection      [acme_]" || return 1
	keys "$1" Tab; typ "$1" acme; keys "$1" Enter
	wait_text "$1" "[x] 2 Locate" 30 || return 1
	wait_text "$1" "? help  q/Esc quit" || return 1
	keys "$1" q
	wait_text "$1" "Leave the console?" || return 1
	keys "$1" Escape
	wait_gone "$1" "Leave the console?" || return 1
	kill -INT "$(console_pid "$1")"
	wait_text "$1" "Leave the console?" || return 1
	keys "$1" y
	rc=$(wait_exit "$1") || return 1
	[ "$rc" = 0 ] || { echo "    exit status $rc, expected 0" >&2; return 1; }
	finish "$1"
	# during a run, Esc asks; staying keeps the run going
	start "$1" tui
	scope "$1" acme 5 || return 1
	locate_on "$1" || return 1
	plan_on "$1" || return 1
	keys "$1" s
	wait_text "$1" "phase embedding" 30 || return 1
	keys "$1" Escape
	wait_text "$1" "Leave during the run?" || return 1
	keys "$1" Escape
	wait_gone "$1" "Leave during the run?" || return 1
	wait_text "$1" "run completed" 60 || return 1
	keys "$1" Escape
	wait_text "$1" "Leave without the historylog entry?" || return 1
	keys "$1" l
	rc=$(wait_exit "$1") || return 1
	[ "$rc" = 0 ] || { echo "    exit status $rc after the run, expected 0" >&2; return 1; }
	finish "$1"
	# in the sandbox, leaving stops it too, and the dialog says so
	E2E_ENV="EMBFILL_SANDBOX=1" start "$1" tui
	wait_text "$1" "Step 1 - Scope" || return 1
	typ "$1" acme
	keys "$1" Escape
	wait_text "$1" "stops the sandbox" || return 1
	keys "$1" y
	rc=$(wait_exit "$1") || return 1
	finish "$1"
	# with nothing typed, nothing is lost: Esc leaves at once
	start "$1" tui
	wait_text "$1" "Step 1 - Scope" || return 1
	keys "$1" Escape
	rc=$(wait_exit "$1") || return 1
	[ "$rc" = 0 ] || { echo "    exit status $rc, expected 0" >&2; return 1; }
}

t_every_way_out_asks_when_something_would_be_lost() { at_sizes ways_out o; }

# A message longer than the screen is wide wraps onto the status area and
# ends on the screen; a dialog taller than the screen scrolls to its last
# line; the footer keeps every key, the quit key included.
long_texts() { # name
	start "$1" tui
	wait_text "$1" "Step 1 - Scope" || return 1
	typ "$1" acme_long_collection_name; keys "$1" Tab; typ "$1" acme_long_collection_nam3
	keys "$1" Enter
	wait_text "$1" 'the names differ ("acme_long_collection_name" and' || return 1
	wait_text "$1" "name twice" || return 1
	typ "$1" tenant_acme_handbook_2025; keys "$1" Tab; typ "$1" tenant_acme_handbook_2025
	keys "$1" Enter
	wait_text "$1" 'unknown collection "tenant_acme_handbook_2025": it has no chunks;' || return 1
	wait_text "$1" 'you mean "tenant_acme_handbook_2024"?)' || return 1
	scope "$1" acme || return 1
	locate_on "$1" || return 1
	wait_text "$1" "the plan has warnings" 30 || return 1
	wait_text "$1" "r again" || return 1
	wait_text "$1" "? help  q/Esc quit" || return 1
	keys "$1" '?'
	wait_text "$1" "Help" || return 1
	keys "$1" End
	wait_text "$1" "PgUp/PgDn scroll this screen (Up, Down, Home, End too)" || return 1
	keys "$1" x
	wait_gone "$1" "PgUp/PgDn scroll this screen" || return 1
	wait_text "$1" "Step 3 - Plan" || return 1
}

t_long_messages_and_dialogs_fit() {
	sql >/dev/null <<'SQL'
INSERT INTO documents (id, collection, title, body) VALUES (900101, 'tenant_acme_handbook_2024', 't', 'b');
INSERT INTO document_chunks (id, document_id, collection, chunk_index, content)
  VALUES (900101, 900101, 'tenant_acme_handbook_2024', 0, 'x');
SQL
	reset_db
	at_sizes long_texts m; rc=$?
	sql >/dev/null <<'SQL'
DELETE FROM document_chunks WHERE id = 900101;
DELETE FROM documents WHERE id = 900101;
SQL
	return $rc
}

# `embfill run` on a terminal rewrites one progress line in place: at 80
# columns, at 120, and at COLUMNS=50 in an 80-column terminal, it never
# wraps (a wrapped line would leave a new row at every update), and the
# least useful fields go first.
headless_progress() { # name width columns-env
	reset_db
	E2E_W=$2 E2E_ENV="${3:-}" start "$1" run -C acme --confirm acme --batch-size 5
	wait_text "$1" 'run 1 of "acme" completed' 60 || return 1
	# with the rows scrolled off (a resize right after the start may scroll)
	rows=$(tm capture-pane -p -S - -t "$1" | grep -c '% [0-9]*/400') || :
	[ "$rows" = 1 ] || { echo "    $rows progress rows at width $2 ${3:-}:" >&2
		tm capture-pane -p -S - -t "$1" | sed 's/^/    | /' >&2; return 1; }
	line=$(tm capture-pane -p -S - -t "$1" | grep '% [0-9]*/400')
	max=${3:+${3#COLUMNS=}}
	max=${max:-$2}
	[ "${#line}" -lt "$max" ] || { echo "    ${#line} columns: $line" >&2; return 1; }
	case $line in *"400/400"*"ETA"*) ;; *) echo "    no count or ETA: $line" >&2; return 1 ;; esac
	printf '%s\n' "$line"
}

t_headless_progress_fits_the_width() {
	line=$(headless_progress p80 80) || return 1
	case $line in *"in flight"*) echo "    in flight kept at 80: $line" >&2; return 1 ;; esac
	finish p80
	line=$(headless_progress p120 120) || return 1
	case $line in *"/s  ETA"*"in flight"*"retries"*"quarantined 0  "[a-z]*) ;;
	*) echo "    fields missing at 120: $line" >&2; return 1 ;; esac
	finish p120
	line=$(headless_progress p50 80 COLUMNS=50) || return 1
	finish p50
}

# --- runner ------------------------------------------------------------------

ALL="whole_session model_change_through_a_new_collection console_and_command_line_agree
confirmation_mismatch_refused
unknown_collection_refused near_miss_warned hostile_name_drawn_as_escapes
cancel_then_resume resize_during_run sighup_during_run_is_resumable no_color ascii tsan_run
headless_progress_fits_the_width leaving_asks_for_the_unwritten_entry
every_way_out_asks_when_something_would_be_lost long_messages_and_dialogs_fit"

e2e_setup || { echo "e2e: set-up failed" >&2; exit 1; }
echo "e2e: PostgreSQL 15 on a unix socket, sandbox embedder at $EMB_URL, tmux $(tmux -V)"
pass=0 fail=0
for t in ${*:-$ALL}; do
	t0=$(date +%s)
	if "t_$t"; then
		pass=$((pass + 1)); echo "ok   $t ($(( $(date +%s) - t0 )) s)"
	else
		fail=$((fail + 1)); echo "FAIL $t"
	fi
	end_sessions
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
