package testutil

import (
	"fmt"
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
