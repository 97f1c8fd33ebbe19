package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Keepalived is a real keepalived (the VRRP peer of the tests) running in a
// namespace the test made.
type Keepalived struct {
	// Log is what it logs (-l -D: to the console).
	Log *LockedBuffer
	// VRRPPidFile holds its VRRP child's pid once it runs.
	VRRPPidFile string
}

// VRRPPid is its VRRP child's pid, 0 before there is one.
func (k *Keepalived) VRRPPid() int {
	b, err := os.ReadFile(k.VRRPPidFile)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

// StartKeepalived runs keepalived on conf in ns: in the foreground (-n),
// logging to the console (-l -D), VRRP only (-P), its pid files in dir
// under name, and waits for its VRRP child. At cleanup it gets SIGTERM
// (SIGKILL 5 s later), its VRRP child is made sure of, and its log is shown
// if the test failed. keepalived is looked up in PATH, then /usr/sbin; a
// missing one fails the test (make test installs it).
func StartKeepalived(t testing.TB, ns *NS, dir, name, conf string) *Keepalived {
	t.Helper()
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		bin = "/usr/sbin/keepalived"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("keepalived is the VRRP peer of this test (apt-get install keepalived; make test installs it): %v", err)
	}
	k := &Keepalived{Log: &LockedBuffer{}, VRRPPidFile: filepath.Join(dir, name+"-vrrp.pid")}
	cmd := exec.Command("ip", "netns", "exec", ns.Name, bin, "-n", "-l", "-D", "-P",
		"-f", conf, "-p", filepath.Join(dir, name+".pid"), "-r", k.VRRPPidFile, "-c", filepath.Join(dir, name+"-check.pid"))
	cmd.Stdout, cmd.Stderr = k.Log, k.Log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start keepalived: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if p := k.VRRPPid(); p > 0 {
			if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); err == nil && strings.TrimSpace(string(comm)) == "keepalived" {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			t.Logf("keepalived %s (%s):\n%s", name, conf, k.Log.String())
		}
	})
	for deadline := time.Now().Add(5 * time.Second); k.VRRPPid() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("keepalived %s: no VRRP child after 5 s:\n%s", name, k.Log.String())
		}
	}
	return k
}
