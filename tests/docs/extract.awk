# extract.awk - the commands a Markdown page shows, by the convention of
# tests/docs/run.sh (see there).
#
#   awk -v out=DIR -v doc=NAME -f extract.awk PAGE.md
#
# For the k-th command (k = 1, 2, ...; three digits) writes
#   DIR/k.cmd    the command, continuation lines included, without "$ "
#   DIR/k.want   the output lines the page shows under it (maybe empty)
#   DIR/k.meta   one line: NAME:LINE <TAB> run|skip <TAB> exit code <TAB> reason
# and DIR/errors, one line per breach of the convention (NAME:LINE: what).
# The last physical line of a command carries the markers, as a trailing
# shell comment: "# exit N" (expected exit status N) or "# not run: why".

function err(msg) {
	print doc ":" FNR ": " msg >> (out "/errors")
}

function trim(s) {
	sub(/^[ \t]+/, "", s)
	sub(/[ \t]+$/, "", s)
	return s
}

# The markers of a command's last line.
function markers(line, file,    s, rc, why) {
	rc = 0
	mode = "run"
	why = ""
	if (match(line, /(^|[ \t])#[ \t]*not run/)) {
		s = substr(line, RSTART + RLENGTH)
		if (s !~ /^:[ \t]*[^ \t]/)
			err("\"# not run\" needs a reason: \"# not run: why\"")
		sub(/^:[ \t]*/, "", s)
		mode = "skip"
		why = trim(s)
	} else if (match(line, /(^|[ \t])#[ \t]*exit[ \t]+[0-9]+/)) {
		s = substr(line, RSTART, RLENGTH)
		sub(/.*exit[ \t]+/, "", s)
		rc = s + 0
	}
	printf "%s:%d\t%s\t%d\t%s\n", doc, start, mode, rc, why > (file ".meta")
	close(file ".meta")
}

function begin_cmd(text) {
	k++
	cur = sprintf("%s/%03d", out, k)
	start = FNR
	printf "" > (cur ".want")
	close(cur ".want")
	printf "%s\n", text > (cur ".cmd")
	cont = (text ~ /\\$/)
	if (!cont)
		markers(text, cur)
}

BEGIN {
	k = 0
	infence = 0
	printf "" > (out "/errors")
	close(out "/errors")
}

!infence {
	if (match($0, /^ ? ? ?(```+|~~~+)/)) {
		fence = trim(substr($0, 1, RLENGTH))
		info = trim(substr($0, RLENGTH + 1))
		lang = info
		sub(/[ \t{].*/, "", lang)
		if (lang == "")
			err("a fenced block without a language: say what it holds " \
			    "(console, sh, text, sql, ...)")
		infence = 1
		cmdblock = (lang == "console" || lang == "sh")
		cur = ""
		cont = 0
		fchar = substr(fence, 1, 1)
		flen = length(fence)
	}
	next
}

{
	line = $0
	t = trim(line)
	if (substr(t, 1, 1) == fchar && length(t) >= flen && t ~ /^(`+|~+)$/) {
		if (cont)
			err("a command ends in \\ at the end of its block")
		if (cur != "")
			close(cur ".want")
		infence = 0
		next
	}
	if (!cmdblock)
		next
	if (cont) {
		printf "%s\n", line > (cur ".cmd")
		cont = (line ~ /\\$/)
		if (!cont) {
			close(cur ".cmd")
			markers(line, cur)
		}
		next
	}
	if (substr(line, 1, 2) == "$ ") {
		if (cur != "") {
			close(cur ".cmd")
			close(cur ".want")
		}
		begin_cmd(substr(line, 3))
		next
	}
	if (cur == "") {
		if (t != "")
			err("output before any command in a " lang " block (commands start with \"$ \")")
		next
	}
	print line >> (cur ".want")
}

END {
	if (infence)
		err("a fenced block is not closed")
}
