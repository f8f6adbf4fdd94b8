#!/bin/sh
# Builds pgvector 0.8.6 (PostgreSQL License; its source is vendor/
# pgvector-0.8.6-src.tar.gz, nothing is downloaded) into the machine's
# PostgreSQL 15, which Debian 12 ships without it, so that the tests cover
# the native server with pgvector that most production systems run, as
# well as real[].  Needs root, or sudo, for apt-get and make install.
# Idempotent and quiet; prints "pgvector X.Y.Z" when the extension is there.
#
# `make check` passes with and without it: the suites find out which the
# server has.  .ci/run calls it; a developer may or may not.
set -eu
cd "$(dirname "$0")/.."
PGC=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$PGC" ] || { echo "install-pgvector: no $PGC (run make deps first)" >&2; exit 1; }
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
if [ ! -f "$("$PGC" --pkglibdir)/vector.so" ]; then
	if ! dpkg-query -W -f='${Status}' postgresql-server-dev-15 2>/dev/null | grep -q 'ok installed'; then
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends postgresql-server-dev-15 >/dev/null
	fi
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	tar -xzf vendor/pgvector-0.8.6-src.tar.gz -C "$tmp"
	make -s -C "$tmp/pgvector" PG_CONFIG="$PGC" >/dev/null
	$SUDO make -s -C "$tmp/pgvector" PG_CONFIG="$PGC" install >/dev/null
fi
sed -n "s/^default_version = '\(.*\)'/pgvector \1/p" "$("$PGC" --sharedir)/extension/vector.control"
