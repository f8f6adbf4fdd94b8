#!/bin/sh
# corpus.sh - the sandbox's corpus: this system's own manual pages (sections
# 1 and 8) rendered to plain text, and which collection each page goes to.
#
#   usage: corpus.sh OUTDIR [PAGES]
#
# Writes OUTDIR/text/<page>.<section>.txt (kept between runs as a cache) and
# OUTDIR/manifest.tsv, one line per page for `embfill demo --copy-corpus`:
#   batch  collection  title  source_uri  path
# batch "initial" is loaded and embedded first; batch "import" is the new
# corpus of tenant_acme, loaded after its embedding run.
#
# Nobody here writes the corpus: the text is whatever the installed packages
# ship.  A few well-known commands are placed on purpose, so that the
# training's spot-check questions have a page to cite (tar(1) arrives with
# tenant_acme's new import, df(1) is in tenant_globex, ...); the rest is an
# even spread over the sorted list of pages of a modest size (MAX_BYTES).
# Without manual pages (a minimal image excludes them), the packages'
# copyright files under /usr/share/doc are used instead, and the script
# says so.
set -eu

self=$0
LC_ALL=C.UTF-8
MANWIDTH=80
export LC_ALL MANWIDTH
# Pages of a modest size: below MIN_BYTES a page is mostly its header (or a
# .so redirect); above MAX_BYTES it would cost the demo's start more than
# it gives (400-character chunks: about 70 of them to embed).  The placed
# pages are taken whatever their size.
MIN_BYTES=1500
MAX_BYTES=24000

# collection:page.section, in the order the training uses them
PLACED="
tenant_acme:ls.1 tenant_acme:cp.1 tenant_acme:mv.1 tenant_acme:rm.1 tenant_acme:mkdir.1
tenant_acme:chmod.1 tenant_acme:chown.1 tenant_acme:ln.1 tenant_acme:touch.1 tenant_acme:stat.1
import:tar.1 import:gzip.1 import:grep.1 import:sed.1 import:xargs.1 import:diff.1
tenant_globex:df.1 tenant_globex:du.1 tenant_globex:sort.1 tenant_globex:uniq.1
tenant_globex:head.1 tenant_globex:tail.1 tenant_globex:wc.1 tenant_globex:cut.1
tenant_initech:kill.1 tenant_initech:date.1 tenant_initech:timeout.1 tenant_initech:env.1
tenant_initech:nice.1 tenant_initech:make.1
global_corpus:ip.8 global_corpus:ss.8 global_corpus:useradd.8 global_corpus:passwd.1
global_corpus:apt-get.8 global_corpus:lsblk.8 global_corpus:fsck.8 global_corpus:sysctl.8
"

# Share of the PAGES each collection gets (import is tenant_acme's new corpus).
TARGETS="tenant_acme:18 import:9 tenant_globex:35 tenant_initech:18 global_corpus:20"

# render FILE DEST: plain UTF-8 text, no overstrike, no hyphenation or
# justification (which would split words and pad lines with spaces).
render() {
	tmp=$2.tmp.$$
	if command -v man >/dev/null 2>&1; then
		man --nh --nj -P cat -l "$1" 2>/dev/null | col -bx >"$tmp" || :
	fi
	if [ ! -s "$tmp" ] && command -v mandoc >/dev/null 2>&1; then
		mandoc -T utf8 -O width=80 "$1" 2>/dev/null | col -bx >"$tmp" || :
	fi
	if [ ! -s "$tmp" ] && command -v groff >/dev/null 2>&1; then
		zcat -f "$1" | groff -man -Tutf8 -rLL=80n 2>/dev/null | col -bx >"$tmp" || :
	fi
	mv "$tmp" "$2"
}

if [ "${1:-}" = --render ]; then
	[ -s "$3" ] || render "$2" "$3"
	exit 0
fi
out=$1
pages=${2:-200}
text=$out/text
mkdir -p "$text"

# Every candidate page as "name section path", sorted by name.
candidates() {
	for sec in 1 8; do
		dir=/usr/share/man/man$sec
		[ -d "$dir" ] || continue
		find "$dir" -maxdepth 1 -type f \( -name "*.$sec.gz" -o -name "*.$sec" \) \
			-size +800c -size -14k 2>/dev/null
	done | awk -F/ '{
		base = $NF; sub(/\.gz$/, "", base)
		sec = base; sub(/.*\./, "", sec)
		name = base; sub(/\.[^.]*$/, "", name)
		if (name ~ /^gcloud/ || name ~ /[^A-Za-z0-9._+-]/) next
		print name, sec, $0
	}' | sort -u -k1,1 -k2,2
}

placed_path() { # page.section -> its file, if installed
	name=${1%.*}
	sec=${1##*.}
	for f in /usr/share/man/man$sec/$name.$sec.gz /usr/share/man/man$sec/$name.$sec; do
		[ -f "$f" ] && { echo "$f"; return 0; }
	done
	return 1
}

# "collection name sec path" for the placed pages, then an even spread of
# the other candidates, about a quarter more than needed: some render too
# small (.so redirects) or too large and are left out later.
choose() {
	for entry in $PLACED; do
		coll=${entry%%:*}
		page=${entry#*:}
		f=$(placed_path "$page") && echo "$coll ${page%.*} ${page##*.} $f"
	done
	candidates | awk -v want="$(( pages * 5 / 4 ))" -v placed="$PLACED" '
		BEGIN { n = split(placed, p, /[ \n]+/)
			for (i = 1; i <= n; i++) { sub(/^[^:]*:/, "", p[i]); skip[p[i]] = 1 } }
		!(($1 "." $2) in skip) { c[m++] = $0 }
		END { if (want > m) want = m
		      # in a stride order, so that pages left over at the end are
		      # spread over the alphabet too
		      k = (want % 7) ? 7 : (want % 11) ? 11 : 1
		      for (j = 0; j < want; j++) print "- " c[int(((j * k) % want) * m / want)] }'
}

render_all() { # list -> renders what is not cached yet, two at a time
	awk -v text="$text" '{ print $4; print text "/" $2 "." $3 ".txt" }' "$1" |
		xargs -r -d '\n' -n 2 -P 2 sh "$self" --render
}

# Deals the rendered pages out to the collections: placed pages where they
# were placed, the rest in turn to whichever collections are below their
# share of PAGES.
assign() {
	awk -v pages="$pages" -v targets="$TARGETS" -v text="$text" \
	    -v min="$MIN_BYTES" -v max="$MAX_BYTES" '
		BEGIN { nt = split(targets, t, " ")
			for (i = 1; i <= nt; i++) { split(t[i], kv, ":"); name[i] = kv[1]
				want[kv[1]] = int(pages * kv[2] / 100 + 0.5) } }
		function size(f,   line, n) { n = 0
			while ((getline line < f) > 0) n += length(line) + 1
			close(f); return n }
		{ f = text "/" $2 "." $3 ".txt"; s = size(f)
		  if (s < min || (s > max && $1 == "-")) next
		  coll = $1
		  if (coll == "-") { coll = ""
			for (k = 0; k < nt && coll == ""; k++) { c = name[1 + (turn + k) % nt]
				if (have[c] < want[c]) { coll = c; turn = (turn + k + 1) % nt } } }
		  if (coll == "" ) next
		  have[coll]++
		  batch = coll == "import" ? "import" : "initial"
		  if (coll == "import") coll = "tenant_acme"
		  printf "%s\t%s\t%s\t%s\t%s\n", batch, coll, $2 "(" $3 ")", "man:" $2 "(" $3 ")", f }'
}

# The fallback corpus: Debian's copyright files, one document per package.
fallback() {
	echo "corpus: no manual pages installed; using /usr/share/doc/*/copyright instead" >&2
	i=0
	for f in /usr/share/doc/*/copyright; do
		[ -f "$f" ] || continue
		s=$(wc -c <"$f")
		if [ "$s" -lt "$MIN_BYTES" ] || [ "$s" -gt "$MAX_BYTES" ]; then continue; fi
		pkg=${f%/copyright}
		pkg=${pkg##*/}
		case $((i % 6)) in
		0|1) coll=global_corpus ;; 2) coll=tenant_globex ;;
		3) coll=tenant_initech ;; *) coll=tenant_acme ;;
		esac
		batch=initial
		[ $((i % 12)) -eq 5 ] && batch=import
		printf '%s\t%s\t%s\t%s\t%s\n' "$batch" "$coll" "$pkg copyright" "file://$f" "$f"
		i=$((i + 1))
		[ "$i" -lt "$pages" ] || break
	done
}

list=$out/chosen.list
choose >"$list"
if [ "$(wc -l <"$list")" -lt 20 ]; then
	fallback >"$out/manifest.tsv"
else
	render_all "$list"
	assign <"$list" >"$out/manifest.tsv"
fi
n=$(wc -l <"$out/manifest.tsv")
[ "$n" -gt 0 ] || { echo "corpus: found no text to load" >&2; exit 1; }
echo "corpus: $n documents"
