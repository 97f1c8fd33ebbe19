#!/usr/bin/env bash
# Fails when the committed bpf2go output is not what `make generate` makes
# from the committed C sources, leaving the regenerated files in place.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
files=(pkg/dataplane/xdp/xlb_bpfel.go pkg/dataplane/xdp/xlb_bpfel.o pkg/dataplane/xdp/bench_bpfel_test.go pkg/dataplane/xdp/bench_bpfel_test.o)
for f in "${files[@]}"; do cp "$f" "$tmp/"; done
(cd pkg/dataplane/xdp && go generate ./...)
stale=0
for f in "${files[@]}"; do
	if ! cmp -s "$f" "$tmp/$(basename "$f")"; then
		echo "check-generate: $f is stale: run 'make generate' and commit it" >&2
		stale=1
	fi
done
exit $stale
