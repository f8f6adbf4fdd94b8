#!/bin/sh
# Checks that calls between the program's modules go one way only.
#
#   usage: layers.sh BUILD_DIR
#
# The order is the layers block of docs/architecture.md: one line per
# layer, lowest first; folders on one line are peers.  A file may call
# functions defined in its own folder and in folders of lower layers; a
# call into a peer or a higher layer fails the check, and so does a cycle
# between the files of one folder.  Calls are read from the objects with
# nm (what each object defines, what it leaves undefined), so the check
# sees what the linker sees, whatever the headers say.
set -eu

build=$1
here=$(cd "$(dirname "$0")/.." && pwd)
doc="$here/docs/architecture.md"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

awk '/<!-- layers:begin -->/ { on = 1; next } /<!-- layers:end -->/ { on = 0 }
     on && $0 !~ /^```/ && NF { rank++; for (i = 1; i <= NF; i++) print $i, rank }' \
	"$doc" >"$tmp/rank"
[ -s "$tmp/rank" ] || { echo "layers: no layers block in $doc" >&2; exit 1; }

# "object folder" for every object of the program
(cd "$build/obj" && find core tui -name '*.o') | sort | while read -r o; do
	printf '%s %s\n' "$o" "$(dirname "$o")"
done >"$tmp/objs"
# "symbol object" of what each object defines, and of what it uses
while read -r o f; do
	nm --defined-only "$build/obj/$o" | awk -v o="$o" '$2 ~ /^[TDBR]$/ { print $3, o }'
done <"$tmp/objs" | sort >"$tmp/defs"
while read -r o f; do
	nm -u "$build/obj/$o" | awk -v o="$o" '{ print $2, o }'
done <"$tmp/objs" | sort >"$tmp/uses"
# "caller callee symbol"
join "$tmp/uses" "$tmp/defs" | awk '$2 != $3 { print $2, $3, $1 }' | sort -u >"$tmp/calls"

awk -v doc="$doc" -v inner="$tmp/inner" '
	FILENAME == ARGV[1] { rank[$1] = $2; next }
	FILENAME == ARGV[2] { folder[$1] = $2; next }
	{
		ff = folder[$1]; tf = folder[$2]
		if (!(ff in rank) || !(tf in rank)) {
			missing[(ff in rank) ? tf : ff] = 1
			next
		}
		if (ff == tf) { print $2, $1 > inner; next }
		if (rank[tf] >= rank[ff]) {
			printf "layers: %s calls %s of %s: %s is not below %s\n", $1, $3, $2, tf, ff
			bad = 1
		}
	}
	END {
		for (f in missing) {
			printf "layers: folder %s is in no layer of %s\n", f, doc
			bad = 1
		}
		exit bad
	}' "$tmp/rank" "$tmp/objs" "$tmp/calls" >&2 || fail=1
: >>"$tmp/inner"
if ! tsort "$tmp/inner" >/dev/null 2>"$tmp/cycle"; then
	echo "layers: files of one folder call each other in a cycle:" >&2
	grep -v 'input contains a loop' "$tmp/cycle" | sed 's/^tsort: /  /' >&2
	fail=1
fi
if [ "${fail:-0}" -ne 0 ]; then
	exit 1
fi
echo "layers: $(wc -l <"$tmp/objs") objects; every call stays in its folder or goes to a lower layer"
