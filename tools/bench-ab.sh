#!/usr/bin/env bash
# Interleaved A/B of the data plane's benchmarks: the test binary of a git
# revision (A) and of the working tree (B), built once each and run
# alternately, so that both meet the same machine state. Root.
#   tools/bench-ab.sh REV [ROUNDS] [BENCH-REGEXP]
set -euo pipefail
rev=${1:?usage: tools/bench-ab.sh REV [ROUNDS] [BENCH-REGEXP]}
rounds=${2:-3}
bench=${3:-BenchmarkDR|BenchmarkForwardRate}
top=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'git -C "$top" worktree remove --force "$tmp/a" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git -C "$top" worktree add -q --detach "$tmp/a" "$rev"
# The data plane's package moved in the restructuring (issue 12).
pkgdir() { if [[ -d $1/pkg/dataplane/xdp ]]; then echo "$1/pkg/dataplane/xdp"; else echo "$1/pkg/dataplane"; fi; }
a=$(pkgdir "$tmp/a") b=$(pkgdir "$top")
(cd "$a" && go test -c -o "$tmp/a.test" .)
(cd "$b" && go test -c -o "$tmp/b.test" .)
for round in $(seq "$rounds"); do
	for side in a b; do
		dir=$a
		[[ $side == b ]] && dir=$b
		echo "== round $round: $side ($([[ $side == a ]] && echo "$rev" || echo "working tree"))"
		# A failing case's own words are kept: a grep for the result
		# lines alone dropped them.
		out=$tmp/$side-$round.out
		if ! (cd "$dir" && "$tmp/$side.test" -test.run '^$' -test.bench "$bench" -test.benchtime 2000000x >"$out" 2>&1); then
			cat "$out" >&2
			echo "bench-ab: $side failed in round $round" >&2
			exit 1
		fi
		grep '^Benchmark' "$out" | tee -a "$tmp/all-$side"
	done
done
# Each case's metrics over the rounds, side by side: median (min-max) per
# side, so that a host whose rounds move by more than the change can
# still be read.
echo "== medians over $rounds rounds: a ($rev) | b (working tree)"
for side in a b; do
	sed "s/^/$side /" "$tmp/all-$side"
done | awk '
{
	side = $1; name = $2
	for (i = 4; i + 1 <= NF; i += 2) {
		k = name " " $(i + 1)
		if (!(k in seen)) { seen[k] = 1; order[++n] = k }
		vals[side, k] = vals[side, k] " " $i
	}
}
function stat(list,   a, m, i, j, t, med) {
	m = split(list, a, " ")
	if (m == 0) return "-"
	for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
	med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
	return sprintf("%.4g (%.4g-%.4g)", med, a[1], a[m])
}
END { for (i = 1; i <= n; i++) printf "%-60s %24s | %s\n", order[i], stat(vals["a", order[i]]), stat(vals["b", order[i]]) }'
