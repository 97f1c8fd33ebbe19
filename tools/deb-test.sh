#!/usr/bin/env bash
# Installs bin/xlb_*.deb (tools/deb.sh) into a fresh Debian 12 root made by
# debootstrap (minbase), as `make test` does: the binaries run there, an
# upgrade over itself configures, removal leaves only the conffile, and a
# purge leaves nothing the package brought: the root's file list equals the
# one before the install. Needs root and Debian's mirror (as apt does).
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls bin/xlb_*.deb)
root=$(mktemp -d /tmp/xlb-debroot.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "deb-test: debootstrap bookworm (minbase) into $root"
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$root.log" 2>&1 || {
	tail -20 "$root.log"; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
files() { (cd "$root" && find . -xdev \( -path ./var/lib/dpkg -o -path ./var/log -o -path ./var/cache -o -path ./tmp -o -path ./run \) -prune -o -print | sort); }
files > "$root.before"
cp "$deb" "$root/tmp/xlb.deb"
fail() { echo "deb-test: $*" >&2; rm -f "$root.before"; exit 1; }

chroot "$root" dpkg -i /tmp/xlb.deb || fail "dpkg -i failed"
for f in /usr/sbin/xlb /usr/sbin/xlbadm /lib/systemd/system/xlb.service /etc/default/xlb \
	/usr/share/man/man8/xlb.8.gz /usr/share/man/man8/xlbadm.8.gz /usr/share/man/man5/xlb.conf.5.gz \
	/usr/share/bash-completion/completions/xlb /usr/share/bash-completion/completions/xlbadm \
	/usr/share/doc/xlb/examples/keepalived.conf /usr/share/doc/xlb/copyright; do
	[[ -e $root$f ]] || fail "$f not installed"
done
# (Not "| tee /dev/stderr | grep -q": grep -q leaves at the first line, tee
# then dies of SIGPIPE writing xlb version's next ones, which pipefail makes
# a failure now and then; and reopening /dev/stderr truncates a log file.)
got=$(chroot "$root" /usr/sbin/xlb version) || fail "xlb version failed"
echo "$got" >&2
grep -qx "xlb $(dpkg-deb -f "$deb" Version)" <<<"$got" || fail "xlb version does not print the package's version"
chroot "$root" /usr/sbin/xlb check -f /usr/share/doc/xlb/examples/keepalived.conf >/dev/null || fail "the example configuration does not pass xlb check"
chroot "$root" dpkg -i /tmp/xlb.deb >/dev/null || fail "upgrade over itself failed"
chroot "$root" dpkg -r xlb || fail "dpkg -r failed"
[[ -e $root/etc/default/xlb && ! -e $root/usr/sbin/xlb ]] || fail "after removal: conffile gone or binaries left"
chroot "$root" dpkg -P xlb || fail "dpkg -P failed"
rm -f "$root/tmp/xlb.deb"
if ! diff -u "$root.before" <(files); then
	fail "the purge left files the package brought (above)"
fi
rm -f "$root.before"
echo "deb-test: installed, upgraded, removed and purged cleanly in a fresh Debian 12 root"
