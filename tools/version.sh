#!/usr/bin/env bash
# Prints xlb's version from git, as a Debian version: the latest vX.Y.Z tag
# and the commits since it (0.0.0 before the first tag), the commit date and
# hash, and ".dirty" when the work tree differs from it.
#   tools/version.sh          the version: 0.0.0+git20261205.3c1bacf
#   tools/version.sh commit   the full commit hash, "+dirty" when modified
set -euo pipefail
cd "$(dirname "$0")/.."
dirty=""
git diff --quiet HEAD -- 2>/dev/null || dirty=1
if [[ ${1:-} == commit ]]; then
	echo "$(git rev-parse HEAD)${dirty:++dirty}"
	exit 0
fi
base=0.0.0
if tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null); then
	base=${tag#v}
fi
echo "${base}+git$(git log -1 --format=%cd --date=format:%Y%m%d).$(git rev-parse --short=7 HEAD)${dirty:+.dirty}"
