#!/bin/sh
# Installs what the build, the tests and the sandbox need, when it is missing:
# Debian packages through apt-get (sudo when not root) and the pinned npm
# packages of package-lock.json.  Quick and silent when everything is there.
set -eu

cd "$(dirname "$0")/.."

PKGS="make gcc clang libclang-rt-14-dev pkg-config
libncurses-dev libpq-dev libcurl4-openssl-dev libcjson-dev libcriterion-dev
libmicrohttpd-dev libssl-dev postgresql-15 postgresql-client-15 tmux mandoc time bc
util-linux procps ca-certificates"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
	if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
	echo "deps: installing:$missing"
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

# npm packages, exactly as the lockfile pins them.  node_modules/.package-lock.json
# is npm's own record of what it installed; reinstall when the lockfile changed.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	echo "deps: npm ci (pinned by package-lock.json)"
	npm ci --no-audit --no-fund --loglevel=error
fi
