package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// xlb stop (the unit's ExecStop) signals as the unit's job asks and returns
// once the process is gone. systemctl is a stand-in printing list-jobs'
// lines (this machine's PID 1 is no systemd); the process records which
// signal it got.
func TestStopFollowsTheJob(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		jobs, want, says string
	}{
		{"42 xlb.service restart running\n", "USR2", "SIGUSR2 to %d (a restart job: hitless handoff)"},
		{"43 xlb.service stop running\n", "TERM", "SIGTERM to %d (a stop job)"},
		{"44 other.service restart running\n", "TERM", "SIGTERM to %d (not a restart)"},
		{"", "TERM", "SIGTERM to %d (not a restart)"},
	} {
		fake := filepath.Join(dir, "systemctl")
		require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\n[ \"$1\" = list-jobs ] || exit 1\nprintf '"+tc.jobs+"'\n"), 0o755))
		got := filepath.Join(dir, "signal")
		os.Remove(got)
		daemon := exec.Command("sh", "-c", `trap 'echo USR2 > `+got+`; exit 0' USR2; trap 'echo TERM > `+got+`; exit 0' TERM; echo up > `+got+`; while :; do sleep 0.05; done`)
		require.NoError(t, daemon.Start())
		done := make(chan struct{})
		go func() { daemon.Wait(); close(done) }()
		require.Eventually(t, func() bool { b, _ := os.ReadFile(got); return string(b) == "up\n" }, 5*time.Second, 10*time.Millisecond)

		var out, errOut strings.Builder
		code := run(env{stdout: &out, stderr: &errOut}, []string{"stop", "--unit", "xlb.service", "--systemctl", fake, strconv.Itoa(daemon.Process.Pid)})
		assert.Equal(t, 0, code, errOut.String())
		// Exited when xlb stop returns: gone, or a zombie this test has
		// not reaped yet (the Wait below may lag behind the exit).
		assert.False(t, running(daemon.Process.Pid), "xlb stop returned with %d still running", daemon.Process.Pid)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("%d not reaped", daemon.Process.Pid)
		}
		b, _ := os.ReadFile(got)
		assert.Equal(t, tc.want+"\n", string(b), "jobs %q", tc.jobs)
		assert.Contains(t, out.String(), strings.ReplaceAll(tc.says, "%d", strconv.Itoa(daemon.Process.Pid)))
		<-done
	}
}
