#!/usr/bin/env bash
# The project's test command (README's, and what .ci/run runs): installs
# what the tests need beyond Go (PostgreSQL, Chromium and gcc, from Debian's
# packages, only if missing), then runs every test with the race detector.
# The docker tag adds deploy/'s image and compose tests (skipped when no
# Docker engine answers). Extra arguments go to go test, e.g.
#   scripts/test.sh -run Outbox ./outbox/...
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
if [ $# -eq 0 ]; then
	set -- ./...
fi
exec go test -race -tags docker "$@"
