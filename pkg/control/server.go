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
	"time"

	"golang.org/x/net/netutil"
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
	// MaxConns is how many connections are served at once; more wait in
	// the kernel's backlog (never as descriptors of the daemon's).
	MaxConns = 64
	// MaxRequest bounds a request body (ipvsadm -R of 100k lines fits).
	MaxRequest = 8 << 20
	// ReadTimeout bounds reading a request, headers and body.
	ReadTimeout = 10 * time.Second
	// IdleTimeout closes a kept-alive connection that sends nothing.
	IdleTimeout = 5 * time.Second
)

// Listen makes the socket (mode 0600, its directory 0700) and serves b on
// it until Close. A socket left by a dead daemon is replaced; one a live
// daemon answers on is not, and nothing that is not a socket is ever
// removed.
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket == 0 {
		return nil, fmt.Errorf("control socket %s: the path exists and is not a socket (%s); refusing to replace it", path, fi.Mode().Type())
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

// Serve serves h on l with the control socket's limits (MaxConns at once,
// read and idle timeouts, 64 KiB of headers) until the server is closed;
// the metrics endpoint uses it too.
func Serve(l net.Listener, h http.Handler, what string, log *slog.Logger) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: ReadTimeout, IdleTimeout: IdleTimeout, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	l = netutil.LimitListener(l, MaxConns)
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
