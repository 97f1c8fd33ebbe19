package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultSocket is where the daemon listens.
const DefaultSocket = "/run/xlb/xlb.sock"

// Backend is what the API serves.
type Backend interface {
	Status() (Status, error)
	// Ipvsadm runs an ipvsadm command line; it returns what ipvsadm would
	// print and its exit code.
	Ipvsadm(args []string, stdin string) (stdout, stderr string, code int)
}

// IpvsadmRequest is one xlbadm invocation.
type IpvsadmRequest struct {
	Args  []string `json:"args"`
	Stdin string   `json:"stdin,omitempty"`
}

// IpvsadmResponse is what it printed and its exit code.
type IpvsadmResponse struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	Code   int    `json:"code"`
}

// Server serves the API on a unix socket.
type Server struct {
	path string
	srv  *http.Server
	l    net.Listener
}

// Limits of the control socket: it answers one root user's commands, so
// these are far above what xlbadm and xlb status send, and bound what a
// stuck or hostile client can hold.
const (
	// MaxConns is how many connections are open at once. At the cap the
	// oldest one that has sent no request for EvictAfter is closed to make
	// room: held connections cannot keep a command waiting behind them.
	MaxConns = 512
	// EvictAfter is how long a connection may sit without a request
	// before it can be closed to make room (a local client sends its
	// request at once).
	EvictAfter = 50 * time.Millisecond
	// MaxRequest bounds a request body (ipvsadm -R of 100k lines fits).
	MaxRequest = 8 << 20
	// ReadTimeout bounds reading a request, headers and body.
	ReadTimeout = 10 * time.Second
	// IdleTimeout closes a kept-alive connection that sends nothing.
	IdleTimeout = 5 * time.Second
)

// CheckSocketPath refuses a socket path where something other than a
// socket is: Listen never replaces it, and a daemon says so before it
// opens anything.
func CheckSocketPath(path string) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control socket %s: the path exists and is not a socket (%s); refusing to replace it", path, fi.Mode().Type())
	}
	return nil
}

// Listen makes the socket (mode 0600, its directory 0700) and serves b on
// it until Close. A socket left by a dead daemon is replaced; one a live
// daemon answers on is not, and nothing that is not a socket is ever
// removed.
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if err := CheckSocketPath(path); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another xlb daemon is running", path)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("control socket %s: remove the stale socket: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.Status()
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, st)
	})
	mux.HandleFunc("POST /v1/ipvsadm", func(w http.ResponseWriter, r *http.Request) {
		var req IpvsadmRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRequest)).Decode(&req); err != nil {
			code := http.StatusBadRequest
			if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
				code = http.StatusRequestEntityTooLarge
			}
			writeError(w, code, err)
			return
		}
		out, errOut, code := b.Ipvsadm(req.Args, req.Stdin)
		writeJSON(w, IpvsadmResponse{Stdout: out, Stderr: errOut, Code: code})
	})
	return &Server{path: path, l: l, srv: Serve(l, mux, "control socket", log)}, nil
}

// Serve serves h on l with the control socket's limits (MaxConns open,
// the silent ones evicted first; read and idle timeouts, 64 KiB of headers) until the server is closed;
// the metrics endpoint uses it too.
func Serve(l net.Listener, h http.Handler, what string, log *slog.Logger) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: ReadTimeout, IdleTimeout: IdleTimeout, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	cl := newCapListener(l, MaxConns, EvictAfter)
	srv.ConnState = cl.connState
	l = cl
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(what, "error", err)
		}
	}()
	return srv
}

// Close stops serving and removes the socket.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	_ = os.Remove(s.path)
	return err
}

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(apiError{Error: err.Error()})
}

// capListener accepts at once, so that no command waits in the kernel's
// backlog behind held connections, and keeps at most max open: at the cap
// it closes the oldest connection that has sent nothing for evict (a held
// or silent one, or a kept-alive idle one). A connection it closes has had
// no byte read from it and has none waiting, so no request is lost: the
// client may send it again. When none can go, it waits until one closes
// or ages.
type capListener struct {
	net.Listener
	max   int
	evict time.Duration
	mu    sync.Mutex
	conns map[*capConn]struct{}
	freed chan struct{}
}

// capConn is an accepted connection; since is guarded by the listener's mu.
type capConn struct {
	net.Conn
	since time.Time   // accepted, or idle since
	read  atomic.Bool // a byte of a request has been read
}

func (c *capConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.read.Store(true)
	}
	return n, err
}

func newCapListener(l net.Listener, max int, evict time.Duration) *capListener {
	return &capListener{Listener: l, max: max, evict: evict, conns: map[*capConn]struct{}{}, freed: make(chan struct{}, 1)}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		victim, wait := l.makeRoom()
		if victim != nil {
			victim.Conn.Close()
		}
		if wait == 0 {
			break
		}
		select {
		case <-l.freed:
		case <-time.After(wait):
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &capConn{Conn: c, since: time.Now()}
	l.mu.Lock()
	l.conns[cc] = struct{}{}
	l.mu.Unlock()
	return cc, nil
}

// makeRoom returns a connection to close, or how long to wait for one to
// age (0: there is room).
func (l *capListener) makeRoom() (*capConn, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) < l.max {
		return nil, 0
	}
	var oldest *capConn
	for c := range l.conns {
		if !c.read.Load() && (oldest == nil || c.since.Before(oldest.since)) && !pending(c.Conn) {
			oldest = c
		}
	}
	if oldest == nil {
		return nil, l.evict // all busy: wait for one to finish
	}
	if age := time.Since(oldest.since); age < l.evict {
		return nil, l.evict - age
	}
	delete(l.conns, oldest)
	return oldest, 0
}

// connState follows the server's view of each connection.
func (l *capListener) connState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*capConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateIdle:
		if _, ok := l.conns[c]; ok {
			c.since = time.Now()
			c.read.Store(false)
		}
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
		select {
		case l.freed <- struct{}{}:
		default:
		}
	}
}

// pending says whether c has bytes waiting to be read: a request the
// server has not got to yet.
func pending(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	_ = rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n > 0
}
