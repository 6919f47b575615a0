#!/usr/bin/env bash
# test.sh runs every test of every module in this repository with the race
# detector, after go vet. Tests that need Chromium, redis-server or
# PostgreSQL skip when those are missing, except under CI=true, where a
# missing part fails.
set -euo pipefail
cd "$(dirname "$0")"
for mod in . examples/e2e redisbroker pgstore sqlitestore bench; do
	echo "== $mod"
	(cd "$mod" && go vet ./... && go test -race -count=1 -timeout 20m ./...)
done
