package testutil

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Command is name run inside the namespace (its network namespace only,
// as Exec runs), not yet started.
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + n.Name, name}, args...)...)
}

// Child is a long-running command a test started (often the test binary
// run again as a daemon), with what it writes to standard error kept for
// the test's log.
type Child struct {
	Cmd   *exec.Cmd
	mu    sync.Mutex
	log   strings.Builder
	ended chan struct{}
	exit  error
}

// StartChild starts cmd. When the test ends, a child still running gets
// SIGTERM (SIGKILL 10 s later), and its standard error is logged.
func StartChild(t testing.TB, cmd *exec.Cmd) *Child {
	t.Helper()
	c := &Child{Cmd: cmd, ended: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("start %s: %v", cmd, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.log.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
		}
		// Wait closes the pipe, so it comes after the last line.
		c.exit = cmd.Wait()
		close(c.ended)
	}()
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Logf("%s: %v", cmd, err)
		}
		t.Logf("%s stderr:\n%s", cmd, c.Logs())
	})
	return c
}

// Logs is what the child has written to standard error so far.
func (c *Child) Logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

// Ended is closed when the child has ended; Err then says how.
func (c *Child) Ended() <-chan struct{} { return c.ended }

// Err is the child's exit error (nil: it exited 0), once Ended is closed.
func (c *Child) Err() error {
	<-c.ended
	return c.exit
}

// Stop sends SIGTERM and waits up to 10 s for the child to end, killing it
// after that; it returns the exit error. A child that has ended already is
// not signalled.
func (c *Child) Stop() error {
	select {
	case <-c.ended:
		return c.exit
	default:
	}
	_ = c.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.ended:
		return c.exit
	case <-time.After(10 * time.Second):
		_ = c.Cmd.Process.Kill()
		<-c.ended
		return fmt.Errorf("did not stop within 10 s of SIGTERM, killed: %w", c.exit)
	}
}
