#!/usr/bin/env bash
# test.sh runs every test of every module in this repository with the race
# detector, after go vet. Tests that need Chromium, redis-server or
# PostgreSQL skip when those are missing, except under CI=true, where a
# missing part fails.
set -euo pipefail
cd "$(dirname "$0")"

# The modules, each tested once. go.work at the root joins them (so that
# `go run ./examples/static` works from here): it must list the same.
modules=(. bench examples examples/e2e examples/jwt pgstore prommetrics redisbroker sqlitestore)

echo "== go.work"
found=$(find . -name go.mod -not -path './.git/*' | sed -e 's|^\./||' -e 's|/\?go\.mod$||' -e 's|^$|.|' | sort)
listed=$(printf '%s\n' "${modules[@]}" | sort)
work=$(go work edit -json | sed -n 's|.*"DiskPath": "\(.*\)".*|\1|p' | sed -e 's|^\./||' -e 's|^$|.|' | sort)
if [[ "$found" != "$listed" || "$work" != "$listed" ]]; then
	echo "modules with a go.mod:"; echo "$found"
	echo "modules in test.sh:"; echo "$listed"
	echo "modules in go.work:"; echo "$work"
	exit 1
fi
# The README's commands, run from the root in workspace mode.
go build ./examples/static ./examples/multiport ./examples/jwt

# Each module on its own go.mod and go.sum, as its users build it.
export GOWORK=off
for mod in "${modules[@]}"; do
	echo "== $mod"
	(cd "$mod" && go vet ./... && go test -race -count=1 -timeout 20m ./...)
done
