package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// XDPKernelMissing says why this kernel cannot run xlb's XDP data plane
// (it is below the documented minimum, 5.15), or "" when it can. Call it
// as root. It is probe.XDPDataPlane's check, repeated: pkg/probe's own
// tests import this package, which therefore cannot import pkg/probe.
func XDPKernelMissing() string {
	if err := features.HaveProgramHelper(ebpf.XDP, asm.FnForEachMapElem); err != nil {
		var u unix.Utsname
		_ = unix.Uname(&u)
		return fmt.Sprintf("kernel %s is below the XDP data plane's minimum, 5.15 (%v)", unix.ByteSliceToString(u.Release[:]), err)
	}
	return ""
}

// RequireXDPKernel skips a test of the XDP data plane on a kernel below its
// minimum; pkg/dataplane's TestOldKernelRefused checks the refusal there.
func RequireXDPKernel(t testing.TB) {
	t.Helper()
	if why := XDPKernelMissing(); why != "" {
		t.Skip(why + "; TestOldKernelRefused checks that xlb refuses it plainly")
	}
}

// TunnelDevicesMissing says why this kernel cannot decapsulate as an IPVS
// TUN real does (no ipip, fou or ip_gre: this development machine's own
// kernel has none), or "" when it can.
func TunnelDevicesMissing() string { return modulesMissing("ipip", "fou", "ip_gre") }

// modulesMissing names the first of the kernel modules mods that is
// neither loaded nor loadable, with the kernel's release, or "".
func modulesMissing(mods ...string) string {
	for _, m := range mods {
		if _, err := os.Stat("/sys/module/" + m); err == nil {
			continue
		}
		if out, err := exec.Command("modprobe", "-q", m).CombinedOutput(); err != nil {
			var u unix.Utsname
			_ = unix.Uname(&u)
			return fmt.Sprintf("kernel %s has no %s module (%v %s)", unix.ByteSliceToString(u.Release[:]), m, err, out)
		}
	}
	return ""
}

// RequireTunnelDevices skips a test whose reals decapsulate with the
// kernel's own ipip, fou and gre devices on a kernel without them, naming
// it: make test's VM stage runs such tests on Debian's kernel, which has
// them.
func RequireTunnelDevices(t testing.TB) {
	t.Helper()
	if why := TunnelDevicesMissing(); why != "" {
		t.Skip(why + "; make vmtest KERNEL=6.1 runs this (and make test's VM stage)")
	}
}
