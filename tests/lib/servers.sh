#!/bin/sh
# Throwaway database servers for tests and benchmarks, sourced by scripts.
#
#   servers_start DIR   starts PostgreSQL 15 (unix socket in DIR) and a PGlite
#                       server with pgvector (free loopback port), and sets
#                       EF_TEST_PG_DSN and EF_TEST_PGLITE_DSN
#   servers_stop        stops both by PID (also called from the EXIT trap)
#
# initdb refuses to run as root, so as root the cluster runs as "nobody" in
# a directory that user owns.  Nothing is ever stopped by name.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
: "${EF_TOP:?set EF_TOP to the source tree before sourcing servers.sh}"
EF_PG_PID=""
EF_PGLITE_PID=""

free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

# setpriv execs in place, so $! is the server's own PID, not a wrapper's.
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
	else
		"$@"
	fi
}

wait_for() { # seconds command...
	n=$(( $1 * 10 )); shift
	while [ "$n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

pg_start() {
	dir=$1
	mkdir -p "$dir/pg"
	[ "$(id -u)" -eq 0 ] && chown nobody "$dir" "$dir/pg"
	as_owner "$PG_BIN/initdb" -D "$dir/pg/data" -U postgres -A trust -E UTF8 \
		--locale=C.UTF-8 >"$dir/pg/initdb.log" 2>&1 || {
		cat "$dir/pg/initdb.log" >&2; return 1; }
	port=$(free_port)
	set -- "$PG_BIN/postgres" -D "$dir/pg/data" -k "$dir/pg" -p "$port" \
		-c listen_addresses='' -c fsync=off -c synchronous_commit=off \
		-c full_page_writes=off -c max_connections=60
	if [ "$(id -u)" -eq 0 ]; then
		exec_as_owner="setpriv --reuid=nobody --regid=nogroup --clear-groups --"
	else
		exec_as_owner=""
	fi
	# Started directly (not through a shell function, which would fork a
	# subshell), so that $! is the postmaster's own PID.
	$exec_as_owner "$@" >"$dir/pg/server.log" 2>&1 &
	EF_PG_PID=$!
	EF_TEST_PG_DSN="host=$dir/pg port=$port user=postgres dbname=postgres"
	if ! wait_for 30 "$PG_BIN/pg_isready" -q -h "$dir/pg" -p "$port"; then
		echo "servers: PostgreSQL did not start; its log:" >&2
		cat "$dir/pg/server.log" >&2
		return 1
	fi
	export EF_TEST_PG_DSN
}

pglite_start() {
	dir=$1
	port=$(free_port)
	"$EF_TOP/node_modules/.bin/pglite-server" -p "$port" -h 127.0.0.1 -m 1 \
		-e @electric-sql/pglite-pgvector:vector >"$dir/pglite.log" 2>&1 &
	EF_PGLITE_PID=$!
	EF_TEST_PGLITE_DSN="host=127.0.0.1 port=$port user=postgres dbname=postgres sslmode=disable"
	if ! wait_for 60 grep -q listening "$dir/pglite.log"; then
		echo "servers: PGlite did not start; its log:" >&2
		cat "$dir/pglite.log" >&2
		return 1
	fi
	export EF_TEST_PGLITE_DSN
}

stop_pid() { # pid signal
	[ -n "$1" ] || return 0
	kill -"$2" "$1" 2>/dev/null || return 0
	n=100
	while kill -0 "$1" 2>/dev/null && [ "$n" -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

servers_stop() {
	stop_pid "$EF_PGLITE_PID" TERM
	stop_pid "$EF_PG_PID" INT
	EF_PG_PID=""
	EF_PGLITE_PID=""
}

servers_start() {
	pg_start "$1" && pglite_start "$1"
}
