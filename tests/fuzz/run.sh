#!/bin/sh
# A short libFuzzer run of every target over its kept corpus
# (tests/fuzz/corpus/<target>/); new inputs go to a scratch directory so the
# tree is never modified.  A crash, leak or sanitizer report fails the run.
#   usage: run.sh SECONDS target...
set -eu
secs=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
for bin in "$@"; do
	name=$(basename "$bin")
	corpus="$here/corpus/$name"
	scratch=$(mktemp -d /tmp/embfill-fuzz.XXXXXX)
	log="$scratch/log"
	if ! "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$scratch/" "$scratch" "$corpus" >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		echo "fuzz: $name FAILED; the input that broke it is under $scratch" >&2
		exit 1
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	echo "fuzz: $name clean, $runs runs in ${secs}s"
	rm -rf "$scratch"
done
