#!/bin/sh
# Runs the integration suite against real servers: a PostgreSQL 15 cluster
# and a PGlite server with pgvector, both throwaway, both stopped by PID when
# this script ends, however it ends.
#   usage: run.sh /path/to/build/tests/integration [criterion args...]
set -eu

bin=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
EF_TOP=$(cd "${EF_TOP:-$here/../..}" && pwd)
. "$EF_TOP/tests/lib/servers.sh"

tmp=$(mktemp -d /tmp/embfill-it.XXXXXX)
chmod 755 "$tmp"
cleanup() {
	servers_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

servers_start "$tmp"
echo "integration: PostgreSQL 15 on a unix socket, PGlite (pgvector) on 127.0.0.1"

export EF_TEST_TMP="$tmp"
export LSAN_OPTIONS="suppressions=$EF_TOP/tests/lsan.supp:print_suppressions=0"
export LC_ALL=C.UTF-8 TZ=UTC
cd "$EF_TOP"
# PGlite's socket server takes one connection at a time: its suites run
# one test at a time, everything else two at a time.
# A caller's own --filter replaces these two: its tests run once, one at a
# time.
rc=0
case " $* " in
*" --filter"*) "$bin" --jobs 1 "$@" || rc=$? ;;
*)
	"$bin" --jobs 2 --filter '!(pglite_*)/*' "$@" || rc=$?
	"$bin" --jobs 1 --filter 'pglite_*/*' "$@" || rc=$?
	;;
esac
exit $rc
