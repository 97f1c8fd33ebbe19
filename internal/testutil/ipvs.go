package testutil

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// IPVSMissing says why this kernel cannot have IPVS, naming its build
// option, or "" when it has it (loaded, built in, or as a module to load).
// It reads what the kernel was built with (/proc/config.gz, else
// /boot/config-RELEASE), else its module tree.
func IPVSMissing() string {
	if _, err := os.Stat("/sys/module/ip_vs"); err == nil {
		return ""
	}
	var u unix.Utsname
	_ = unix.Uname(&u)
	rel := unix.ByteSliceToString(u.Release[:])
	if v, ok := kernelConfig(rel, "CONFIG_IP_VS"); ok {
		if v == "y" || v == "m" {
			return ""
		}
		return fmt.Sprintf("kernel %s is built without IPVS (CONFIG_IP_VS is not set)", rel)
	}
	for _, f := range []string{"modules.builtin", "modules.dep"} {
		b, err := os.ReadFile(filepath.Join("/lib/modules", rel, f))
		if err == nil && strings.Contains(string(b), "/ip_vs.ko") {
			return ""
		}
	}
	return fmt.Sprintf("kernel %s has no IPVS: no kernel config says it has, and /lib/modules/%s holds no ip_vs module", rel, rel)
}

// kernelConfig is option's value in the running kernel's configuration
// ("" when it is not set), and whether that configuration could be read.
func kernelConfig(release, option string) (string, bool) {
	var r io.Reader
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		if r, err = gzip.NewReader(f); err != nil {
			return "", false
		}
	} else if f, err := os.Open("/boot/config-" + release); err == nil {
		defer f.Close()
		r = f
	} else {
		return "", false
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), option+"="); ok {
			return v, true
		}
	}
	return "", sc.Err() == nil
}

// RequireIPVS is for a test of the kernel's IPVS, given what probing it
// returned: it skips on a kernel built without IPVS, naming it (make
// vmtest runs such tests on one that has it), and fails where the kernel
// has IPVS and the probe could not use it anyway.
func RequireIPVS(t testing.TB, probeErr error) {
	t.Helper()
	if probeErr == nil {
		return
	}
	if why := IPVSMissing(); why != "" {
		t.Skipf("%s; make vmtest KERNEL=6.1 runs this (probe: %v)", why, probeErr)
	}
	t.Fatalf("the kernel has IPVS, but it cannot be used: %v", probeErr)
}
