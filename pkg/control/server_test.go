package control

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type backend struct{}

func (backend) Status() (Status, error) { return Status{Dataplane: "test"}, nil }
func (backend) Ipvsadm(args []string, stdin string) (string, string, int) {
	return strings.Join(args, " ") + "|" + stdin, "", 0
}

// --socket never removes what is not a socket.
func TestListenLeavesOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "precious")
	require.NoError(t, os.WriteFile(path, []byte("keep me"), 0o644))
	_, err := Listen(path, backend{}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "the path exists and is not a socket")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(b))

	// A socket nobody answers on (a dead daemon's) is replaced.
	sock := filepath.Join(t.TempDir(), "xlb.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	s, err := Listen(sock, backend{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	st, err := NewClient(sock).Status()
	require.NoError(t, err)
	assert.Equal(t, "test", st.Dataplane)
	// A live one is not.
	_, err = Listen(sock, backend{}, slog.New(slog.DiscardHandler))
	assert.ErrorContains(t, err, "another xlb daemon is running")
}

// Connections that send nothing hold the socket only for a bounded time and
// number: the daemon's descriptors do not grow past MaxConns however many
// connect (the rest wait in the kernel's backlog), and with every slot held
// a real command gets through once the header timeout frees them. A
// request too big is refused, not read.
func TestSocketLimits(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "xlb.sock")
	s, err := Listen(sock, backend{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	fds := func() int {
		es, err := os.ReadDir("/proc/self/fd")
		require.NoError(t, err)
		return len(es)
	}

	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	hold := func(n int) {
		for range n {
			c, err := net.Dial("unix", sock)
			if err != nil {
				return // the backlog is full: what a flood meets
			}
			held = append(held, c)
		}
	}
	body := bytes.Repeat([]byte("x"), MaxRequest+1)
	c := &http.Client{Transport: &http.Transport{Dial: func(_, _ string) (net.Conn, error) { return net.Dial("unix", sock) }}}
	resp, err := c.Post("http://xlb/v1/ipvsadm", "application/json", bytes.NewReader(append([]byte(`{"args":["`), body...)))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	before := fds()
	// Thousands of silent connections: the server accepts each at once
	// and closes the oldest silent ones to stay at its cap, so a command
	// never waits behind them.
	hold(4000)
	require.Greater(t, len(held), 3000, "the server keeps accepting")
	start := time.Now()
	st, err := NewClient(sock).Status()
	require.NoError(t, err)
	assert.Equal(t, "test", st.Dataplane)
	took := time.Since(start)
	t.Logf("a status request after %d silent connections took %v", len(held), took)
	assert.Less(t, took, time.Second)
	// The client's own ends count here too (this test is both sides).
	grown := fds() - before - len(held)
	t.Logf("%d connections held; the server's descriptors grew by %d", len(held), grown)
	assert.LessOrEqual(t, grown, MaxConns+4)

	// A thousand clients at once, the silent ones still there: every one
	// answered.
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 1000 {
		wg.Go(func() {
			if _, err := NewClient(sock).Status(); err != nil {
				if failed.Add(1) < 3 {
					t.Logf("failed: %v", err)
				}
			}
		})
	}
	wg.Wait()
	assert.Zero(t, failed.Load(), "of 1000 concurrent clients")
	for _, c := range held {
		c.Close()
	}
	held = nil

	r, err := NewClient(sock).Ipvsadm([]string{"-Ln"}, "")
	require.NoError(t, err)
	assert.Equal(t, "-Ln|", r.Stdout)
}

// A unix socket whose accept queue is full refuses a connect with EAGAIN at
// once; the client tries again until its deadline, so a moment's burst on
// the daemon's socket does not fail a command.
func TestDialRetriesAFullQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}))
	require.NoError(t, syscall.Listen(fd, 1))
	f := os.NewFile(uintptr(fd), path)
	l, err := net.FileListener(f)
	require.NoError(t, err)
	f.Close()
	defer l.Close()

	// Fill the queue: connects that nobody accepts, until one is refused.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; ; i++ {
		require.Less(t, i, 100, "the queue never filled")
		c, err := net.Dial("unix", path)
		if err != nil {
			require.ErrorIs(t, err, syscall.EAGAIN, "a full queue refuses with EAGAIN")
			break
		}
		held = append(held, c)
	}

	// The daemon catches up 200 ms later.
	go func() {
		time.Sleep(200 * time.Millisecond)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	c, err := dialUnix(ctx, path)
	require.NoError(t, err, "connected once there was room")
	c.Close()
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "it waited for room")
}
