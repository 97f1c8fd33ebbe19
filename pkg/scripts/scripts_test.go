package scripts

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/config"
)

// A script still running when the daemon stops gets the grace, then is
// killed with its children: none outlives the daemon. One that ends in
// time is waited for.
func TestPoolCloseEndsScripts(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "notify.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nsleep 60 &\necho $$ $! > \"$1\"\nwait\n"), 0o755))
	quick := filepath.Join(dir, "quick.sh")
	require.NoError(t, os.WriteFile(quick, []byte("#!/bin/sh\nsleep 0.2\ntouch \"$1\"\n"), 0o755))

	p := NewPool(slog.New(slog.DiscardHandler))
	run := p.Runner()
	pids := filepath.Join(dir, "pids")
	run(&config.Script{Args: []string{script, pids}}, "test")
	run(&config.Script{Args: []string{quick, filepath.Join(dir, "done")}}, "test")
	var procs []int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(pids)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		for _, f := range strings.Fields(string(b)) {
			n, err := strconv.Atoi(f)
			require.NoError(t, err)
			procs = append(procs, n)
		}
		return true
	}, 5*time.Second, 10*time.Millisecond)
	require.Len(t, procs, 2)

	start := time.Now()
	p.Close(time.Second)
	assert.Less(t, time.Since(start), 3*time.Second)
	_, err := os.Stat(filepath.Join(dir, "done"))
	assert.NoError(t, err, "the script that ended within the grace ran to its end")
	for _, pid := range procs {
		// SIGKILL is sent; its delivery takes a moment.
		assert.Eventually(t, func() bool { return !alive(pid) }, time.Second, 10*time.Millisecond, "process %d outlived the pool", pid)
	}
}

// alive says whether pid runs: a zombie (killed, its reaper slow, as PID 1
// in a container may be) does not.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}
