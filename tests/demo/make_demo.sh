#!/bin/sh
# `make demo` in a fresh copy of the tree, driven in tmux at 80x24 like a
# newcomer would, once per scenario (tenant_acme, tenant_globex,
# tenant_initech, global_corpus), each a `make demo` of its own: the console
# opens on the scenario (-C), the name is typed twice, steps 2-6 are gone
# through (warnings accepted with a when a step offers it; tenant_globex
# goes through the new collection the plan preselects), the run completes,
# validation passes, the historylog entry is written with w, and the
# console is left with q.  After each: the historylog named by HISTORYLOG
# in the sandbox's embfill.env has a new entry with outcome completed,
# `status --json` showed missing 0 where the run wrote, the seeding drew a
# bar that ended full, and every process the demo recorded is gone.  At
# the end the historylog, which the sandboxes share, holds an entry for
# each collection and no run number twice.
#
# Sourced by tests/demo/run.sh (its ok/fail/check/alive/json_field and $bin,
# $tmp, and $EF_TOP, the tree under test); the test is make_demo_test.
#
# The copy: by default the files git would put in a commit of the tree
# under test (tracked and untracked-but-not-ignored, as they are now, via
# `git ls-files | tar`), so that uncommitted changes are what is tested;
# node_modules is a symlink to the tree's (deps.sh then has no `npm ci` to
# do, since tar keeps the mtimes).  EF_DEMO_CLONE=git makes it a real
# `git clone` of the committed HEAD instead (node_modules symlinked the same
# way, with package-lock.json's mtime set back so that npm ci stays out of
# the shared node_modules).
# The sandbox uses the hash backend (use-lite is too slow for a check) and a
# state directory of its own.  Every wait polls the screen with a timeout.

md_tm() { tmux -S "$tmp/md.sock" "$@"; }
md_screen() { md_tm capture-pane -p -t md 2>/dev/null; }
md_keys() { md_tm send-keys -t md "$@"; }
md_type() { md_tm send-keys -t md -l -- "$1"; }

# md_wait TEXT SECONDS: until TEXT is on the screen; shows the screen on timeout.
md_wait() {
	n=$(($2 * 10))
	while [ "$n" -gt 0 ]; do
		md_screen | grep -qF -- "$1" && return 0
		[ ! -s "$tmp/md.rc" ] || break
		sleep 0.1
		n=$((n - 1))
	done
	echo "    timed out waiting for: $1" >&2
	md_screen | sed 's/^/    | /' >&2
	[ ! -s "$tmp/md.rc.err" ] || tail -n 20 "$tmp/md.rc.err" | sed 's/^/    err| /' >&2
	return 1
}

# md_advance NEXT SECONDS: the current step's checks are done when its
# footer (one or two rows) offers "a accept warnings" (then a) or "Enter
# next", or its status message (which wraps onto the rows above the footer)
# says Enter goes on (then Enter): until NEXT is on screen.
md_advance() {
	n=$(($2 * 10))
	while [ "$n" -gt 0 ]; do
		s=$(md_screen)
		case $s in *"$1"*) return 0 ;; esac
		st=$(printf '%s\n' "$s" | sed -n 17,24p)
		ft=$(printf '%s\n' "$s" | sed -n 22,24p)
		case $ft in
		*"a accept warnings"*) md_keys a; sleep 0.2 ;;
		*"Enter next"*) md_keys Enter; sleep 0.2 ;;
		*) case $st in *"Enter goes on"*) md_keys Enter; sleep 0.2 ;; esac ;;
		esac
		sleep 0.1
		n=$((n - 1))
	done
	echo "    timed out waiting for: $1" >&2
	md_screen | sed 's/^/    | /' >&2
	return 1
}

# md_walk SCENARIO: `make demo` on one scenario, walked to a written entry.
md_walk() {
	coll=$1
	t0=$(date +%s)
	md_tm kill-server 2>/dev/null
	rm -f "$tmp/md.rc" "$tmp/md.rc.err"
	md_tm -f "$tmp/md.tmux.conf" new-session -d -s md -x 80 -y 24 -c "$src" \
		sh -c 'rcf=$1; shift; "$@" 2>"$rcf.err"; echo $? >"$rcf"' sh "$tmp/md.rc" \
		env -i PATH="$PATH" HOME="$tmp/home" LC_ALL=C.UTF-8 TZ=UTC TERM=screen-256color \
		ESCDELAY=25 XDG_STATE_HOME="$mdstate" EMBFILL_DEMO_BACKEND=hash \
		MAKEFLAGS=-j4 make demo DEMO_ARGS="--scenario $coll"
	md_tm set-option -t md window-size manual >/dev/null 2>&1
	md_tm resize-window -t md -x 80 -y 24 >/dev/null 2>&1

	# the build (the first time) and the sandbox take a while; the console
	# then opens on step 1
	if ! md_wait "Step 1 - Scope" 150; then
		fail "$coll: make demo in $md_what opens the console"
		md_tm kill-server 2>/dev/null
		return 1
	fi
	ok "$coll: make demo in $md_what opens the console ($(($(date +%s) - t0)) s)"
	check "$coll: step 1 names the scenario's collection" \
		md_wait 'The scenario'"'"'s collection is "'"$coll"'"' 5
	check "$coll: the name is not prefilled" md_wait "Collection      [_]" 5
	pids=$(cat "$sbx/pids" 2>/dev/null | awk '{ print $2 }')
	check "$coll: the demo recorded what it started" test -n "$pids"
	hlog=$(sed -n 's/^HISTORYLOG=//p' "$sbx/embfill.env" 2>/dev/null)
	before=0
	[ ! -f "$hlog" ] || before=$(grep -c "^## .* - $coll - run " "$hlog")

	md_type "$coll"
	md_keys Tab
	md_type "$coll"
	md_keys Enter
	r=0
	md_wait "Step 2 - Locate" 20 &&
		md_advance "Step 3 - Plan" 60 &&
		md_advance "Press s to start" 60 || r=1
	check "$coll: steps 1-3 pass (or their warnings are accepted)" test "$r" = 0
	if [ "$r" = 0 ]; then
		md_keys s
		check "$coll: the run completes" md_wait "run completed" 120
		r=0
		md_advance "Step 5 - Validate" 20 && md_advance "Step 6 - Summary" 120 || r=1
		check "$coll: validation passes (or is accepted) and the summary shows" \
			test "$r" = 0
		md_keys w
		check "$coll: w writes the historylog entry" \
			md_wait "entry written at the top of" 20
	fi
	# the sandbox stops with the console: ask for its status before leaving
	json=$(env -i PATH="$PATH" HOME="$tmp/home" LC_ALL=C.UTF-8 \
		"$bin" --config "$sbx/embfill.env" status --json 2>&1)
	case $coll in
	tenant_globex) got=$(json_field "$json" "${coll}_next" missing 2>/dev/null) ;;
	*) got=$(json_field "$json" "$coll" missing 2>/dev/null) ;;
	esac
	check "$coll: status --json shows missing 0 where the run wrote" test "$got" = 0
	md_keys q
	n=300
	while [ "$n" -gt 0 ] && [ ! -s "$tmp/md.rc" ]; do sleep 0.1; n=$((n - 1)); done
	check "$coll: make demo exits 0 after the console (exit $(cat "$tmp/md.rc" 2>/dev/null))" \
		test "$(cat "$tmp/md.rc" 2>/dev/null)" = 0
	# the seeding drew a bar that ended full, one line per collection
	seeded=$(md_tm capture-pane -p -S - -t md 2>/dev/null |
		grep -c '^demo: seeding tenant_acme \[################\] \([0-9]*\)/\1') || :
	check "$coll: the seeding showed a bar that ended full" test "$seeded" = 1

	after=0
	[ ! -f "$hlog" ] || after=$(grep -c "^## .* - $coll\(_next\)\{0,1\} - run " "$hlog")
	check "$coll: HISTORYLOG ($hlog) has a new entry" test "$after" -gt "$before"
	outcome=$(awk -v c="$coll" '$0 ~ "^## .* - " c "(_next)? - run " { f = 1; next }
		/^## /{ f = 0 } f && /^- \*\*Outcome:\*\*/ { print $3; exit }' "$hlog" 2>/dev/null)
	check "$coll: its outcome is completed" test "$outcome" = completed
	left=""
	for p in $pids; do alive "$p" && left="$left $p"; done
	if [ -z "$left" ]; then ok "$coll: the demo stopped everything it started"; else
		fail "$coll: the demo stopped everything it started" "still alive:$left"
	fi
	check "$coll: and removed its pids file" test ! -e "$sbx/pids"
	md_tm kill-server 2>/dev/null
}

make_demo_test() {
	top=$EF_TOP
	src="$tmp/clone"
	mdstate="$tmp/mdstate"
	sbx="$mdstate/embfill/sandbox"
	start=$(date +%s)

	if [ ! -f "$top/node_modules/.package-lock.json" ] ||
		[ "$top/package-lock.json" -nt "$top/node_modules/.package-lock.json" ]; then
		fail "make demo: the tree's node_modules is installed and current (run \`make deps\`)"
		return
	fi
	if [ "${EF_DEMO_CLONE:-copy}" = git ]; then
		git clone -q "$top" "$src" || { fail "make demo: git clone of the tree"; return; }
		touch -r "$top/node_modules/.package-lock.json" "$src/package-lock.json"
		md_what="a git clone of HEAD"
	else
		mkdir -p "$src"
		# (tar, not rsync: rsync is not among the dependencies; a tracked
		# file deleted in the tree is skipped, as a commit would drop it)
		(cd "$top" && git ls-files -z -c -o --exclude-standard |
			tar --null -T - --ignore-failed-read -cf - 2>/dev/null) |
			tar -xpf - -C "$src" ||
			{ fail "make demo: copy of the tree"; return; }
		md_what="a copy of the tree under test"
	fi
	# -fn: in a tree whose node_modules is itself a symlink (a worktree's),
	# the copy already holds that link (.gitignore's node_modules/ matches
	# directories only); plain ln would create the link inside its target
	ln -sfn "$top/node_modules" "$src/node_modules"
	printf '%s\n' 'set -g remain-on-exit on' 'set -g default-terminal screen-256color' \
		'set -g history-limit 100' >"$tmp/md.tmux.conf"

	# a newcomer's walk: each scenario in a `make demo` of its own, each
	# ending with its entry in the one historylog the sandboxes share
	for coll in tenant_acme tenant_globex tenant_initech global_corpus; do
		md_walk "$coll" || break
	done
	hlog=$(sed -n 's/^HISTORYLOG=//p' "$sbx/embfill.env" 2>/dev/null)
	[ -n "$hlog" ] || hlog="$sbx/historylog.md"
	n=$(sed -n 's/^## .* - \(tenant_acme\|tenant_globex_next\|tenant_initech\|global_corpus\) - run .*/\1/p' \
		"$hlog" 2>/dev/null | sort -u | wc -l)
	check "after the four walks the historylog holds an entry for each collection" \
		test "$n" = 4
	runs=$(sed -n 's/^## .* - run \([0-9]*\)$/\1/p' "$hlog" 2>/dev/null)
	check "and no run number twice ($(echo $runs))" \
		test "$(echo "$runs" | sort | uniq -d | wc -l)" = 0
	XDG_STATE_HOME="$mdstate" "$bin" demo --stop >/dev/null 2>&1
	echo "     (make demo test: $(($(date +%s) - start)) s)"
}
