#!/usr/bin/env bash
# Runs greypit's whole test suite: installs what the tests need (postfix,
# swaks) when missing and running as root, then go vet and go test over
# every package. The end-to-end tests start and stop their own private
# Postfix instances on loopback. With CI=true a missing component fails
# the tests; it is never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || { echo "test.sh: Go is required (go1.26 or newer)" >&2; exit 1; }
scripts/test-deps.sh
echo "test.sh: go vet ./..."
go vet ./...
echo "test.sh: go test ./..."
go test -count=1 -timeout 25m "$@" ./...
