#!/bin/sh
# PID 1 of the vmtest guest (busybox sh), put in the initramfs as /init.
#
# ttyS0 (console.log on the host): kernel messages and "VMTEST:" progress.
# ttyS1 (raw): the xlb probe report between VMTEST-PROBE-BEGIN/END, then each
# package's go test -v output between VMTEST-PKG-BEGIN/END, then
# VMTEST-RESULT. The host splits that into probe.json and test.log; there is
# no 9p or isa-debug-exit in Debian's cloud kernels to hand results back.
#
# Debian's static busybox runs its own applet for a command before looking
# in PATH (FEATURE_SH_STANDALONE), so this script names the real ip,
# modprobe and friends by path. Programs the tests start (exec.Command) use
# PATH, where /usr/sbin comes first.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp VMTEST=1
# The ipvsadm goldens' check runs the real ipvsadm against this stand-in
# (built on the host: the guest has no C compiler).
export IPVSSHIM_SO=/usr/lib/xlb/ipvsshim.so

# As many descriptors as a systemd-started shell gets (init's hard limit is
# 4096; the control socket's tests hold thousands of connections).
ulimit -n 524288

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
hostname vmtest
/usr/sbin/ip link set lo up

up() { cut -d' ' -f1 /proc/uptime; }
echo "VMTEST: booted $(uname -r) uptime=$(up)"

stty -F /dev/ttyS1 raw -echo
exec 3>/dev/ttyS1

# One modprobe for all (each kmod start costs ~0.1 s under TCG); only when
# that fails, one by one to say which.
mods=$(cat /etc/vmtest/modules)
if ! /usr/sbin/modprobe -a $mods 2>/dev/null; then
	for m in $mods; do
		if ! err=$(/usr/sbin/modprobe "$m" 2>&1); then
			echo "VMTEST: modprobe $m failed: $err"
			echo "VMTEST-MODULE-FAILED $m: $err" >&3
		fi
	done
fi
echo "VMTEST: modules loaded uptime=$(up)"

# The tools copied from the host: a missing library shows here, not as a
# puzzling test failure.
for t in "ip -V" "nsenter -V" "ipvsadm -v" "modprobe -V" "ethtool --version"; do
	t=/usr/sbin/$t
	if ! out=$($t 2>&1); then
		echo "VMTEST: $t failed: $out"
		echo "VMTEST-TOOL-FAILED $t: $out" >&3
	fi
done

echo VMTEST-PROBE-BEGIN >&3
/usr/bin/xlb probe --json >&3
echo VMTEST-PROBE-END >&3

# Flags after the user's: -v for the host's summary, and never benchmarks.
set -- $(cat /etc/vmtest/testflags) -test.v -test.bench='^$'
rc=0
while read -r name dir; do
	echo "VMTEST: $name start uptime=$(up)"
	echo "VMTEST-PKG-BEGIN $name" >&3
	t0=$(up)
	(cd "$dir" && "/tests/$name.test" "$@") </dev/null >&3 2>&1
	r=$?
	echo "VMTEST-PKG-END $name rc=$r secs=$(awk "BEGIN { print $(up) - $t0 }")" >&3
	echo "VMTEST: $name rc=$r uptime=$(up)"
	[ "$r" -eq 0 ] || rc=1
done </etc/vmtest/tests

echo "VMTEST-RESULT rc=$rc kernel=$(uname -r) uptime=$(up)" >&3
echo "VMTEST-RESULT rc=$rc kernel=$(uname -r) uptime=$(up)"
exec 3>&-    # closing the tty waits for its output to drain
sync
poweroff -f
