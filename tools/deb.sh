#!/usr/bin/env bash
# Builds bin/xlb_VERSION_amd64.deb with dpkg-deb (no hand-made archives)
# and checks it with lintian (installed by tools/deps.sh test):
#   /usr/sbin/xlb, /usr/sbin/xlbadm       stripped, PIE, version from git
#   /lib/systemd/system/xlb.service       contrib/systemd (not enabled on install)
#   /etc/default/xlb                      its options (a conffile)
#   man pages, bash completion            docs/man, contrib/bash-completion
#   /usr/share/doc/xlb/examples/keepalived.conf
# The keepalived package may stay installed: the unit conflicts with
# keepalived.service (one director per host), not the package.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(tools/version.sh)
commit=$(tools/version.sh commit)
arch=amd64
out=bin/xlb_${version}_${arch}.deb
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

ldflags="-s -w -X main.version=$version -X main.commit=$commit"
go build -buildmode=pie -trimpath -ldflags "$ldflags" -o "$root/usr/sbin/xlb" ./cmd/xlb
go build -buildmode=pie -trimpath -ldflags "-s -w" -o "$root/usr/sbin/xlbadm" ./cmd/xlbadm

install -D -m 0644 contrib/systemd/xlb.service "$root/lib/systemd/system/xlb.service"
install -D -m 0644 contrib/debian/default "$root/etc/default/xlb"
for p in docs/man/*.[58]; do
	sec=${p##*.}
	install -D -m 0644 "$p" "$root/usr/share/man/man$sec/$(basename "$p")"
	gzip -9n "$root/usr/share/man/man$sec/$(basename "$p")"
done
install -D -m 0644 contrib/bash-completion/xlb "$root/usr/share/bash-completion/completions/xlb"
ln -s xlb "$root/usr/share/bash-completion/completions/xlbadm"
doc=$root/usr/share/doc/xlb
install -D -m 0644 contrib/debian/keepalived.conf.example "$doc/examples/keepalived.conf"
install -D -m 0644 contrib/debian/lintian-overrides "$root/usr/share/lintian/overrides/xlb"
cat > "$doc/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: xlb
Source: https://github.com/xlbproject/xlb

Files: *
Copyright: 2026 the xlb authors
License: GPL-2.0-only or BSD-2-Clause
 The BPF programs (bpf/) carry SPDX-License-Identifier:
 (GPL-2.0-only OR BSD-2-Clause); the project applies the same terms to the
 rest until it says otherwise.
 .
 On Debian systems, the complete text of the GNU General Public License
 version 2 can be found in "/usr/share/common-licenses/GPL-2", and the
 BSD 2-clause license below.
 .
 Redistribution and use in source and binary forms, with or without
 modification, are permitted provided that the following conditions are
 met: 1. Redistributions of source code must retain the above copyright
 notice, this list of conditions and the following disclaimer. 2.
 Redistributions in binary form must reproduce the above copyright notice,
 this list of conditions and the following disclaimer in the documentation
 and/or other materials provided with the distribution.
 .
 THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS
 IS" AND ANY EXPRESS OR IMPLIED WARRANTIES ARE DISCLAIMED. IN NO EVENT
 SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DAMAGES
 ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE.
COPYRIGHT
{
	echo "xlb ($version) unstable; urgency=medium"
	echo
	echo "  * Built from commit $commit."
	echo
	echo " -- xlb authors <xlb@xlbproject.invalid>  $(date -R -d "@$(git log -1 --format=%ct)")"
} | gzip -9n > "$doc/changelog.gz"

mkdir -p "$root/DEBIAN"
for s in postinst prerm postrm; do
	install -m 0755 "contrib/debian/$s" "$root/DEBIAN/$s"
done
echo /etc/default/xlb > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/control" <<CONTROL
Package: xlb
Version: $version
Architecture: $arch
Maintainer: xlb authors <xlb@xlbproject.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: libc6 (>= 2.34)
Recommends: ipvsadm
Suggests: keepalived
Section: net
Priority: optional
Homepage: https://github.com/xlbproject/xlb
Description: layer-4 load balancer on XDP, in keepalived and IPVS's place
 xlb reads keepalived.conf, speaks VRRP with keepalived, answers ipvsadm's
 commands (xlbadm) with IPVS's tables, and forwards in XDP (DR and NAT),
 falling back on the kernel's IPVS where XDP cannot run. Connection sync on
 IPVS's wire protocol, Maglev scheduling that matches IPVS's, BGP/ECMP
 scale-out, and restarts that keep forwarding.
 .
 The service is not enabled on install: it replaces keepalived on the host
 (the unit conflicts with keepalived.service). See
 /usr/share/doc/xlb/examples/keepalived.conf and man xlb(8).
CONTROL
find "$root" -type d -exec chmod 0755 {} +
mkdir -p bin
rm -f bin/xlb_*.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "built $out"
if command -v lintian >/dev/null; then
	echo "lintian $out:"
	lintian --fail-on error,warning --info "$out"
	echo "lintian: clean"
fi
