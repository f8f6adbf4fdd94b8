#!/bin/sh
# Every command README.md, docs/examples.md and docs/adopting.md show, run against the sandbox,
# so that the documentation cannot drift from the program.
#   usage: sh tests/docs/run.sh BUILD_DIR [PAGE.md...]
#
# The convention, for the pages this test reads:
#   - Every fenced block says what it holds (```console, ```sh, ```text,
#     ```sql, ...); a block without a language is an error, so that no
#     command hides from the test.
#   - In ```console and ```sh blocks, a line starting with "$ " is a
#     command; a command whose line ends in "\" goes on on the next line.
#     The lines under a command, up to the next "$ " or the end of the
#     block, are its output as the page shows it.
#   - A command must exit 0, unless its last line ends in a shell comment
#     "# exit N": then it must exit N.
#   - A command that cannot run here (make demo itself, git clone, a real
#     database) ends in "# not run: why"; the test prints it and the reason.
#   - A page that holds the line "<!-- docs-test: needs pgvector -->" runs
#     only when the sandbox's PostgreSQL can create pgvector's extension;
#     otherwise each of its commands is reported as not run, with the reason.
#   - Every output line shown must be a line of the command's output
#     (stdout and stderr together), compared after collapsing blanks and
#     turning every number into N (so counts, times, ports and ids may
#     differ) and a home's .local/state into the sandbox's state directory.
#     A line "..." shows that lines were left out, and is not compared.
#
# Each page runs from the start of a fresh sandbox (`embfill demo --keep`,
# hash backend), in one shell of its own, in an empty scratch directory,
# with the build directory first on PATH (so `embfill` is the build's) and
# the settings the demo prints exported.  The sandbox's state lives under
# BUILD_DIR/docs-state (or DOCS_STATE), where the rendered manual pages
# stay cached between runs; it is stopped (`embfill demo --stop`) when the test ends, however
# it ends, and so is anything a page started in the background.
# With DOCS_OUTPUT=DIR, each command's real output is also kept there, as
# PAGE:LINE.out, for refreshing what a page shows.
# Prints "N passed, M failed"; exits 1 when anything failed.
set -u

build=$(cd "${1:?usage: run.sh BUILD_DIR [PAGE.md...]}" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
[ "$#" -gt 0 ] || set -- "$top/README.md" "$top/docs/examples.md" "$top/docs/adopting.md"
bin=$build/embfill
state_home=${DOCS_STATE:-$build/docs-state}
tmp=$(mktemp -d /tmp/embfill-docs-test.XXXXXX)
chmod 755 "$tmp"
mkdir -p "$state_home" "$tmp/home"
export XDG_STATE_HOME="$state_home" EMBFILL_DEMO_BACKEND=hash LC_ALL=C.UTF-8 TZ=UTC \
	HOME="$tmp/home" NO_COLOR=1
# Only the sandbox's settings: none of the caller's may reach a page.
# shellcheck disable=SC2046
unset $(sed -n 's/^	X(\([A-Z_0-9]*\),.*/\1/p' "$top/include/embfill/settings.h") \
	PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE
passed=0
failed=0
skipped=0

# Background jobs the pages started, by PID, then the sandbox.
stop_jobs() {
	[ -f "$tmp/jobs" ] || return 0
	for p in $(sort -u "$tmp/jobs"); do
		kill "$p" 2>/dev/null
	done
	rm -f "$tmp/jobs"
}
cleanup() {
	stop_jobs
	"$bin" demo --stop >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/     /'; }

# The comparable form of output lines: blanks collapsed, numbers as N, the
# state directory as a home's (the pages show /home/USER/.local/state).
normalize() {
	awk -v st="$XDG_STATE_HOME" '
		{
			s = $0
			while ((i = index(s, st)) > 0)
				s = substr(s, 1, i - 1) "~/.local/state" substr(s, i + length(st))
			gsub(/(\/home\/[^\/ "]+|\/root)\/\.local\/state/, "~/.local/state", s)
			gsub(/[0-9]+([.:][0-9]+)*/, "N", s)
			gsub(/[ \t]+/, " ", s)
			sub(/^ /, "", s)
			sub(/ $/, "", s)
			print s
		}'
}

# Lines of WANT (shown output) missing from GOT (real output).
missing_lines() { # want got
	normalize <"$2" >"$2.norm"
	normalize <"$1" | while IFS= read -r w; do
		case $w in "" | "..." | "…") continue ;; esac
		grep -qxF -- "$w" "$2.norm" || printf '%s\n' "$w"
	done
}

# One shell script for the page: every command that runs, its output and
# exit status into files, and any background job it started into jobs.
make_script() { # dir keep.out workdir
	{
		echo "export PATH=\"$build:\$PATH\""
		echo "eval \"\$(sed -n 's/^  export /export /p' '$2')\""
		echo "cd '$3' || exit 99"
		for m in "$1"/*.meta; do
			[ -e "$m" ] || continue
			k=${m%.meta}
			IFS='	' read -r _ mode _ _ <"$m"
			[ "$mode" = run ] || continue
			echo "echo '$k' >'$1/current'"
			echo "{"
			cat "$k.cmd"
			echo "} >'$k.out' 2>&1 </dev/null"
			echo "echo \$? >'$k.rc'"
			echo "[ -z \"\$!\" ] || echo \"\$!\" >>'$tmp/jobs'"
		done
	} >"$1/script.sh"
}

start_sandbox() { # keep.out
	"$bin" demo --stop >/dev/null 2>&1
	if ! timeout 600 "$bin" demo --keep </dev/null >"$1" 2>&1; then
		fail "the sandbox starts (embfill demo --keep)" "$(tail -n 20 "$1")"
		return 1
	fi
	grep -q '^  export DATABASE_URL=' "$1" || {
		fail "the sandbox prints its settings" "$(tail -n 20 "$1")"
		return 1
	}
}

has_pgvector() { # keep.out
	(eval "$(sed -n 's/^  export /export /p' "$1")" &&
	 [ "$(psql -XAtq "$DATABASE_URL" -c "SELECT count(*) FROM pg_available_extensions
		WHERE name = 'vector'" 2>/dev/null)" = 1 ])
}

run_page() { # page.md
	page=$1
	name=${page#"$top"/}
	dir=$tmp/$(echo "$name" | tr '/.' '__')
	mkdir -p "$dir/work"
	awk -v out="$dir" -v doc="$name" -f "$here/extract.awk" "$page"
	while IFS= read -r e; do
		fail "$e"
	done <"$dir/errors"
	if ! ls "$dir"/*.meta >/dev/null 2>&1; then
		fail "$name shows commands" "no \"\$ \" line in a console or sh block"
		return
	fi
	start_sandbox "$dir/keep.out" || return
	if grep -qxF '<!-- docs-test: needs pgvector -->' "$page" && ! has_pgvector "$dir/keep.out"
	then
		for m in "$dir"/*.meta; do
			IFS='	' read -r where mode _ _ <"$m"
			printf 'skip %s: %s\n' "$where" "$(head -n 1 "${m%.meta}.cmd")"
			printf '     not run: the sandbox'"'"'s PostgreSQL has no pgvector (build-aux/install-pgvector.sh builds it)\n'
			skipped=$((skipped + 1))
		done
		"$bin" demo --stop >/dev/null 2>&1
		return
	fi
	make_script "$dir" "$dir/keep.out" "$dir/work"
	timeout -k 10 900 sh "$dir/script.sh" >"$dir/script.log" 2>&1
	rc=$?
	[ "$rc" -ne 124 ] || fail "$name: the page's commands finished within 15 minutes" \
		"still running: $(cat "$(cat "$dir/current").cmd" 2>/dev/null)"
	for m in "$dir"/*.meta; do
		k=${m%.meta}
		IFS='	' read -r where mode want why <"$m"
		cmd=$(head -n 1 "$k.cmd")
		[ "$(wc -l <"$k.cmd")" -le 1 ] || cmd="$cmd ..."
		if [ "$mode" = skip ]; then
			skipped=$((skipped + 1))
			printf 'skip %s: %s\n' "$where" "$cmd"
			printf '     not run: %s\n' "$why"
			continue
		fi
		if [ ! -f "$k.rc" ]; then
			fail "$where: $cmd" "never ran: the page's shell stopped before it ($(tail -n 3 "$dir/script.log"))"
			continue
		fi
		got=$(cat "$k.rc")
		[ -z "${DOCS_OUTPUT:-}" ] ||
			{ mkdir -p "$DOCS_OUTPUT" && cp "$k.out" "$DOCS_OUTPUT/$(echo "$where" | tr '/' '_').out"; }
		if [ "$got" != "$want" ]; then
			fail "$where: $cmd" "exit $got, the page says $want; its output:
$(tail -n 25 "$k.out")"
			continue
		fi
		miss=$(missing_lines "$k.want" "$k.out")
		if [ -n "$miss" ]; then
			fail "$where: $cmd" "shown but not printed:
$(printf '%s\n' "$miss" | sed 's/^/  /')
printed:
$(head -n 40 "$k.out" | sed 's/^/  /')"
			continue
		fi
		ok "$where: $cmd"
	done
	stop_jobs
	"$bin" demo --stop >/dev/null 2>&1
}

for page in "$@"; do
	case $page in /*) ;; *) page=$(pwd)/$page ;; esac
	run_page "$page"
done

echo "$skipped not run (each says why above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
