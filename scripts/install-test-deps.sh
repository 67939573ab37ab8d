#!/usr/bin/env bash
# Installs what the test suite needs beyond Go, from Debian's packages:
#   postgresql  the outbox tests start a real server (internal/pgtest)
#   chromium    the dashboard's browser tests
#   gcc         go test -race needs cgo, and cgo a C compiler
# Idempotent: installs only what is missing. Needs root or sudo.
set -euo pipefail

need=()
command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
command -v "$(go env CC 2>/dev/null || echo gcc)" >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [ ${#need[@]} -eq 0 ]; then
	echo "install-test-deps: postgresql, chromium and a C compiler are installed"
	exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root or sudo to install ${need[*]}" >&2; exit 1; }
	sudo=(sudo)
fi
echo "install-test-deps: installing ${need[*]}"
"${sudo[@]}" apt-get update -qq
# The package's own cluster is not needed (tests run initdb themselves)
# and, in a container, its service is not started.
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
