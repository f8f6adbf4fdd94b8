#!/bin/sh
# The sandbox from a clean state: `embfill demo --keep` starts, its seeded
# counts per collection are what each scenario promises (through the
# settings it prints, every one of them exported), its chunks are its
# documents, a demo from another checkout is refused, and with use-lite,
# questions about the pages' options cite the pages that answer them; a
# second demo reuses the kept sandbox, `--stop` leaves no process, socket
# or port behind; then a second sandbox from scratch (hash backend), which
# keeps the first one's historylog and numbers its runs after them, and a
# demo hung up on while it starts cleans up after itself; and last, `make
# demo` in a fresh copy of the tree driven in tmux through a whole backfill
# of each of the four scenarios (make_demo.sh).
#   usage: sh tests/demo/run.sh BUILD_DIR
# Prints "N passed, M failed"; exits 1 when anything failed.
set -u

build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
EF_TOP=$(cd "$here/../.." && pwd)
bin=$build/embfill
tmp=$(mktemp -d /tmp/embfill-demo-test.XXXXXX)
chmod 755 "$tmp"
export XDG_STATE_HOME="$tmp/state" LC_ALL=C.UTF-8 TZ=UTC
state=$XDG_STATE_HOME/embfill/sandbox
passed=0
failed=0

cleanup() {
	"$bin" demo --stop >/dev/null 2>&1
	[ ! -S "$tmp/md.sock" ] || tmux -S "$tmp/md.sock" kill-server 2>/dev/null
	[ ! -d "$tmp/mdstate" ] || XDG_STATE_HOME="$tmp/mdstate" "$bin" demo --stop >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/     /'; }
check() { # what command...
	what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}

# A process counts as gone once it is dead or a zombie.
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# The recorded PIDs and every descendant of them, now.
tree() {
	ps -eo pid=,ppid= | awk -v roots="$(awk '{ print $2 }' "$state/pids" 2>/dev/null)" '
		{ parent[$1] = $2 }
		END { n = split(roots, r, /[ \n]+/)
		      for (i = 1; i <= n; i++) if (r[i] != "") keep[r[i]] = 1
		      do { grew = 0
			   for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 }
		      } while (grew)
		      for (p in keep) printf "%s ", p }'
}

port_open() {
	node -e 'const s=require("net").connect(+process.argv[1],"127.0.0.1");
		s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1));' "$1"
}

json_field() { # json collection field
	node -e 'const a=JSON.parse(process.argv[1]);const r=a.find(x=>x.collection===process.argv[2]);
		console.log(r?r[process.argv[3]]:"none")' "$1" "$2" "$3"
}

# status --json through the settings the demo printed as `export` lines,
# from a directory without embfill.env
status_via_exports() {
	(
		cd "$tmp" || exit 1
		eval "$(sed -n 's/^  export /export /p' "$1")"
		"$bin" status --json
	)
}

check_promises() { # label json
	label=$1
	json=$2
	tail -n +2 "$state/seeded.tsv" >"$tmp/promises"
	while IFS='	' read -r coll chunks missing smodel scontent; do
		got="$(json_field "$json" "$coll" chunks) $(json_field "$json" "$coll" missing)"
		got="$got $(json_field "$json" "$coll" stale_model) $(json_field "$json" "$coll" stale_content)"
		want="$chunks $missing $smodel $scontent"
		if [ "$got" = "$want" ]; then
			ok "$label: $coll has chunks/missing/stale_model/stale_content $want as promised"
		else
			fail "$label: $coll counts" "promised $want, status --json says $got"
		fi
	done <"$tmp/promises"
	# shellcheck disable=SC2046
	set -- $(awk -F'\t' '$1 == "tenant_acme" { print $2, $3 }' "$tmp/promises")
	check "$label: tenant_acme is mostly embedded, some chunks missing" \
		test "${2:-0}" -gt 0 -a "${2:-0}" -lt "${1:-0}"
	# shellcheck disable=SC2046
	set -- $(awk -F'\t' '$1 == "tenant_globex" { print $2, $4 }' "$tmp/promises")
	check "$label: every tenant_globex chunk is stale by model" test "${1:-0}" -gt 0 -a "$1" = "${2:-}"
	# shellcheck disable=SC2046
	set -- $(awk -F'\t' '$1 == "tenant_initech" { print $2, $5 }' "$tmp/promises")
	check "$label: some tenant_initech chunks are stale by content" \
		test "${2:-0}" -gt 0 -a "${2:-0}" -lt "${1:-0}"
	# shellcheck disable=SC2046
	set -- $(awk -F'\t' '$1 == "global_corpus" { print $2, $3 }' "$tmp/promises")
	check "$label: every global_corpus embedding is missing" test "${1:-0}" -gt 0 -a "$1" = "${2:-}"
	check "$label: global_corpus has no embedded chunk" \
		test "$(json_field "$json" global_corpus embedded)" = 0
}

# The chunks are the documents: the settings chunk by 400 characters with
# 50 shared, no chunk is longer, and the chunks of every page not edited
# after loading, overlaps removed, concatenate back to its body.
check_chunks() { # label dsn
	size=$(sed -n 's/^MAX_CHUNK_SIZE=//p' "$state/embfill.env")
	overlap=$(sed -n 's/^CHUNK_OVERLAP=//p' "$state/embfill.env")
	check "$1: the settings chunk by 400 characters, 50 shared" test "$size $overlap" = "400 50"
	n=$(psql -X -At "$2" -c "SELECT count(*) FROM document_chunks WHERE char_length(content) > 400
		OR char_length(content) = 0")
	check "$1: no chunk is empty or longer than 400 characters" test "$n" = 0
	n=$(psql -X -At "$2" -c "SELECT count(*) FROM documents d WHERE d.collection <> 'tenant_initech'
		AND d.body IS DISTINCT FROM (SELECT string_agg(CASE WHEN c.chunk_index = 0 THEN c.content
		ELSE substr(c.content, 51) END, '' ORDER BY c.chunk_index)
		FROM document_chunks c WHERE c.document_id = d.id)")
	check "$1: chunks without their overlaps concatenate to every document" test "$n" = 0
	n=$(psql -X -At "$2" -c "SELECT count(*) FROM documents WHERE source_uri LIKE 'man:%(%)'
		OR source_uri LIKE 'file://%'")
	check "$1: documents cite their manual page (man:page(section))" test "${n:-0}" -gt 50
}

# Questions a trainee might ask about the options of placed pages, in the
# two collections the demo embeds as it starts, and the page that answers
# each: collection, page, question.
CITE_QUESTIONS="tenant_acme	ls(1)	list files sorted by modification time
tenant_acme	cp(1)	copy directories recursively
tenant_acme	mkdir(1)	create parent directories as needed
tenant_acme	chown(1)	change the owner and group of a file
tenant_acme	ln(1)	make a symbolic link instead of a hard link
tenant_acme	touch(1)	set a file's modification time to a given date
tenant_initech	kill(1)	send a signal to a process
tenant_initech	date(1)	print the date in a custom format
tenant_initech	timeout(1)	run a command with a time limit
tenant_initech	nice(1)	run a program with a lower scheduling priority"
# On this machine's pages, 8 find their page in the top 5 and 6 first; cut
# into 1000-character chunks (of pages up to 48 KB), 7 and 3, and 4 and 2
# before use-lite read blanks as its tokenizer does.
CITE_TOP5_MIN=6
CITE_FIRST_MIN=4

# With use-lite, each question's spot-check cites the page that answers
# it: in the top 5 for at least CITE_TOP5_MIN of them, first for at least
# CITE_FIRST_MIN.  The hash backend matches words, not meaning: skipped.
check_citations() { # label settings-file
	label=$1
	settings=$2
	if ! grep -q '^EMBED_MODEL=embfill-use-lite$' "$settings"; then
		echo "skip $label: citations are checked with the use-lite backend only"
		return
	fi
	: >"$tmp/cites"
	for coll in tenant_acme tenant_initech; do
		set --
		while IFS='	' read -r c page question; do
			[ "$c" != "$coll" ] || set -- "$@" -q "$question"
		done <<-EOF
		$CITE_QUESTIONS
		EOF
		# tenant_acme is partly embedded (its import is not): the questions are
		# about pages with vectors, so its partial coverage is not at issue
		if ! "$bin" --config "$settings" spot-check -C "$coll" -k 5 --json "$@" \
			--set SPOTCHECK_MIN_COVERAGE=0 </dev/null >"$tmp/cites.json" 2>&1; then
			fail "$label: spot-check -C $coll answers" "$(cat "$tmp/cites.json")"
			return
		fi
		node -e 'const o = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
			for (const q of o.queries)
				console.log(q.query + "\t" + q.citations.map(c => c.title).join(" "));' \
			"$tmp/cites.json" >>"$tmp/cites"
	done
	top5=0 first=0 report=""
	while IFS='	' read -r c page question; do
		titles=$(awk -F'\t' -v q="$question" '$1 == q { print $2 }' "$tmp/cites")
		case " $titles " in
		" $page "*) first=$((first + 1)) top5=$((top5 + 1)) ;;
		*" $page "*) top5=$((top5 + 1)) ;;
		esac
		report="$report$page, \"$question\": $titles
"
	done <<-EOF
	$CITE_QUESTIONS
	EOF
	n=$(printf '%s\n' "$CITE_QUESTIONS" | wc -l)
	if [ "$top5" -ge "$CITE_TOP5_MIN" ]; then
		ok "$label: $top5 of $n questions cite their page in the top 5 (at least $CITE_TOP5_MIN)"
	else
		fail "$label: $top5 of $n questions cite their page in the top 5 (at least $CITE_TOP5_MIN)" "${report%?}"
	fi
	if [ "$first" -ge "$CITE_FIRST_MIN" ]; then
		ok "$label: $first of $n cite it first (at least $CITE_FIRST_MIN)"
	else
		fail "$label: $first of $n cite it first (at least $CITE_FIRST_MIN)" "${report%?}"
	fi
}

check_stopped() { # label pids port pgroot
	label=$1
	left=""
	for p in $2; do alive "$p" && left="$left $p"; done
	if [ -z "$left" ]; then ok "$label: no process left"; else
		# shellcheck disable=SC2086 # unquoted on purpose: trims the list
		fail "$label: no process left" "$(ps -o pid,user,args -p "$(echo $left | tr ' ' ,)")"
	fi
	if [ -n "$3" ] && port_open "$3"; then fail "$label: port $3 closed"; else ok "$label: port closed"; fi
	if ls "$4"/.s.PGSQL.* >/dev/null 2>&1; then fail "$label: no socket left in $4"; else
		ok "$label: no socket left"; fi
	check "$label: cluster directory removed" test ! -e "$4"
	check "$label: pids file removed" test ! -e "$state/pids"
}

# --- 1. from a clean state, with the default backend ------------------------

start=$(date +%s)
timeout 900 "$bin" demo --keep </dev/null >"$tmp/keep.out" 2>&1
rc=$?
secs=$(($(date +%s) - start))
if [ "$rc" -eq 0 ]; then ok "demo --keep starts from a clean state ($secs s)"; else
	fail "demo --keep starts from a clean state (exit $rc)" "$(tail -n 30 "$tmp/keep.out")"
	echo "$passed passed, $failed failed"
	exit 1
fi
check "it says which embedding backend it uses" grep -q '^demo: embedder: .*backend' "$tmp/keep.out"
check "it prints how to connect with psql" grep -q '^  psql: *psql "host=' "$tmp/keep.out"
check "it prints the settings to export" grep -q '^  export DATABASE_URL=' "$tmp/keep.out"
check "it prints how to stop it" grep -q 'demo --stop' "$tmp/keep.out"
json=$(status_via_exports "$tmp/keep.out")
check "status --json works through the exported settings" test -n "$json"
# every setting of the sandbox's settings file, the console's chunking and
# batching included, is among the export lines, with the same value
env_keys=$(sed -n 's/^\([A-Z_]*\)=.*/\1/p' "$state/embfill.env" | sort | tr '\n' ' ')
exp_keys=$(sed -n 's/^  export //p' "$tmp/keep.out" | tr ' ' '\n' |
	sed -n 's/^\([A-Z_]*\)=.*/\1/p' | sort | tr '\n' ' ')
check "the export lines set every key of the settings file ($env_keys)" \
	test "$env_keys" = "$exp_keys"
exported=$(eval "$(sed -n 's/^  export /export /p' "$tmp/keep.out")" &&
	printf '%s %s %s' "$MAX_CHUNK_SIZE" "$CHUNK_OVERLAP" "$BATCH_SIZE")
want=$(sed -n 's/^\(MAX_CHUNK_SIZE\|CHUNK_OVERLAP\|BATCH_SIZE\)=//p' "$state/embfill.env" |
	tr '\n' ' ')
check "MAX_CHUNK_SIZE, CHUNK_OVERLAP and BATCH_SIZE are exported as the console has them" \
	test "$exported " = "$want"

pids_before_other=$(cat "$state/pids")
# a second checkout of the tree, run by the same user, is told whose
# sandbox this is instead of taking it over
mkdir -p "$tmp/other/sandbox"
cp "$EF_TOP/sandbox/demo.sh" "$tmp/other/sandbox/"
EMBFILL_BIN=$bin timeout 60 sh "$tmp/other/sandbox/demo.sh" --keep </dev/null \
	>"$tmp/other.out" 2>&1
rc=$?
check "a demo from another checkout is refused while this one keeps the sandbox (exit $rc)" \
	test "$rc" -eq 6
check "and is told which checkout keeps it" \
	grep -qF "kept running from another checkout, $EF_TOP" "$tmp/other.out"
check "the sandbox kept running" test "$pids_before_other" = "$(cat "$state/pids")"
check_promises "first sandbox" "$json"
dsn=$(sed -n 's/^  psql: *psql "\(.*\)"$/\1/p' "$tmp/keep.out")
check_chunks "first sandbox" "$dsn"
check_citations "first sandbox" "$state/embfill.env"
json2=$("$bin" --config "$state/embfill.env" status --json)
check "status --json through the settings file agrees" test "$json" = "$json2"

pids=$(tree)
port=$(cat "$state/embedder.port" 2>/dev/null)
pgroot=$(cat "$state/pgroot" 2>/dev/null)
before=$(cat "$state/pids")
timeout 60 "$bin" demo --keep </dev/null >"$tmp/again.out" 2>&1
check "a second demo --keep reuses the kept sandbox" grep -q 'kept sandbox is running' "$tmp/again.out"
check "and starts nothing new" test "$before" = "$(cat "$state/pids")"

# a run with an entry, so that the next sandbox has a historylog to keep
"$bin" --config "$state/embfill.env" run -C tenant_initech --confirm tenant_initech \
	--historylog </dev/null >"$tmp/entry.out" 2>&1
check "a run of the first sandbox writes its historylog entry" \
	grep -q '^## .* - tenant_initech - run ' "$state/historylog.md"
first_runs=$(psql -X -At "$dsn" -c "SELECT max(id) FROM embfill.runs")

timeout 60 "$bin" demo --stop >"$tmp/stop.out" 2>&1
check "demo --stop exits 0" test $? -eq 0
check_stopped "after --stop" "$pids" "$port" "$pgroot"

# --- 2. a second sandbox from scratch, hash backend --------------------------

start=$(date +%s)
EMBFILL_DEMO_BACKEND="hash" timeout 600 "$bin" demo --keep </dev/null >"$tmp/hash.out" 2>&1
rc=$?
secs=$(($(date +%s) - start))
check "a second demo starts again after --stop (hash backend, $secs s)" test "$rc" -eq 0
check "it says it uses the hash backend" grep -q '^demo: embedder: hash backend' "$tmp/hash.out"
if [ "$rc" -eq 0 ]; then
	check_promises "hash sandbox" "$(status_via_exports "$tmp/hash.out")"
	check "the new sandbox keeps the historylog, and says so" \
		grep -q "^demo: historylog: .*historylog.md keeps the entry of an earlier sandbox; runs here are numbered from $((first_runs + 1)), after theirs\$" \
		"$tmp/hash.out"
	check "the first sandbox's entry is still in it" \
		grep -q '^## .* - tenant_initech - run ' "$state/historylog.md"
	check "no historylog.prev.md" test ! -e "$state/historylog.prev.md"
	hdsn=$(sed -n 's/^  psql: *psql "\(.*\)"$/\1/p' "$tmp/hash.out")
	check "run numbers go on after the first sandbox's ($first_runs)" \
		test "$(psql -X -At "$hdsn" -c "SELECT min(id) FROM embfill.runs")" -gt "$first_runs"
	pids=$(tree)
	port=$(cat "$state/embedder.port" 2>/dev/null)
	pgroot=$(cat "$state/pgroot" 2>/dev/null)
	"$bin" demo --stop >/dev/null 2>&1
	check_stopped "hash sandbox after --stop" "$pids" "$port" "$pgroot"
fi

# --- 3. a hang-up while it starts ----------------------------------------

EMBFILL_DEMO_BACKEND="hash" "$bin" demo --keep </dev/null >"$tmp/hup.out" 2>&1 &
demo=$!
n=600
while [ "$n" -gt 0 ] && ! grep -q '^postgres ' "$state/pids" 2>/dev/null; do
	sleep 0.05
	n=$((n - 1))
done
pids=$(tree)
pgroot=$(cat "$state/pgroot" 2>/dev/null)
kill -HUP "$demo"
wait "$demo"
rc=$?
check "a demo hung up on while it starts exits non-zero (exit $rc)" test "$rc" -ne 0
check "it had started PostgreSQL and the embedder" test "$(echo "$pids" | wc -w)" -ge 2
check_stopped "after SIGHUP" "$pids" "" "$pgroot"

# --- 4. make demo in a fresh copy, a whole backfill of each scenario in tmux --

. "$here/make_demo.sh"
make_demo_test

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
