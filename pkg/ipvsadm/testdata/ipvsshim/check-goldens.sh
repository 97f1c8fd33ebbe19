#!/bin/bash
# Compare the v4 goldens with what the real ipvsadm prints for the same
# table, served by the stand-in kernel. Needs gcc, ipvsadm 1.31 (Debian:
# apt-get install ipvsadm), root (ipvsadm opens a raw socket) and Go.
# Run from anywhere; exits non-zero on the first difference.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
pkg=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -Wall -shared -fPIC -O1 -o "$work/shim.so" "$here/shim.c" -ldl
(cd "$pkg" && XLB_IPVSSHIM_DIR="$work" go test -count=1 -run TestWriteShimState . >/dev/null)
status=0
grep -v '^#' "$pkg/testdata/golden/cases.txt" | while read -r name fixture args; do
	[ -n "$name" ] && [ "$fixture" = v4 ] || continue
	# shellcheck disable=SC2086
	LD_PRELOAD="$work/shim.so" IPVSSHIM_STATE="$work/state" IPVSSHIM_CONN="$work/conn" \
		bash -c 'exec -a ipvsadm "${IPVSADM:-/usr/sbin/ipvsadm}" "$@"' ipvsadm $args >"$work/out" 2>&1 || true
	if cmp -s "$work/out" "$pkg/testdata/golden/$name.txt"; then
		echo "same  $name"
	else
		echo "DIFF  $name"
		diff -u "$pkg/testdata/golden/$name.txt" "$work/out" || true
		exit 1
	fi
done
