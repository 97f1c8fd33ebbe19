package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Checker runs one health check of a real server. Check does not retry and
// keeps no state between calls; it returns once ctx is done.
type Checker interface {
	Check(ctx context.Context) Result
}

// Watcher is a Checker that knows when what it checks may have changed,
// as FILE_CHECK does (keepalived watches its file with inotify): the
// Monitor checks it again at once then, besides its DelayLoop.
type Watcher interface {
	Checker
	// Watch returns a channel that receives after each change, until ctx
	// is done. An error leaves only the DelayLoop.
	Watch(ctx context.Context) (<-chan struct{}, error)
}

// CheckerFunc adapts a function to a Checker.
type CheckerFunc func(ctx context.Context) Result

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context) Result { return f(ctx) }

// Result is the outcome of one check.
type Result struct {
	Up bool
	// Weight is set by a MISC_CHECK with misc_dynamic that exited 2..255:
	// the real server's new weight, exit code - 2. Nil otherwise.
	Weight *int
	// AddWeight is set by a FILE_CHECK with a weight: what it adds to the
	// real server's weight while it is up (keepalived's cur_weight, the
	// file's value times the weight). Nil otherwise, which adds nothing.
	AddWeight *int
	// Err says why a check failed. Nil when Up.
	Err error
}

// DefaultConnectTimeout is keepalived's connect_timeout, used when a
// checker's Timeout is zero.
const DefaultConnectTimeout = 5 * time.Second

// Errors that checks wrap, for callers that branch on why a real failed.
var (
	// ErrTimeout: no answer within the checker's timeout.
	ErrTimeout = errors.New("timed out")
	// ErrStatusCode: an HTTP status outside the url's status codes.
	ErrStatusCode = errors.New("unexpected HTTP status code")
	// ErrDigest: the MD5 digest of an HTTP body differs from the url's.
	ErrDigest = errors.New("body digest mismatch")
	// ErrRegex: an HTTP body does not match the url's regex, or matches
	// it with regex_no_match.
	ErrRegex = errors.New("body regex check failed")
	// ErrNoResponse: the HTTP server closed the connection without a
	// response.
	ErrNoResponse = errors.New("no HTTP response")
	// ErrScriptFailed: a MISC_CHECK script exited with a failure status or
	// was killed by a signal other than for its timeout.
	ErrScriptFailed = errors.New("script failed")
	// ErrRcode: a DNS response with an RCODE other than NOERROR.
	ErrRcode = errors.New("DNS error response")
)

func up() Result            { return Result{Up: true} }
func down(err error) Result { return Result{Err: err} }

// connectTimeout is d, or keepalived's default when d is zero.
func connectTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultConnectTimeout
	}
	return d
}

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// ioError words a failed operation of a check: the context's error when the
// check was cancelled, ErrTimeout after d when the check's own deadline
// passed, and any other error as it is.
func ioError(ctx context.Context, op string, d time.Duration, err error) error {
	if ctx.Err() != nil {
		return &opError{op: op, err: context.Cause(ctx)}
	}
	if isTimeout(err) {
		return &opError{op: op, err: ErrTimeout, after: d}
	}
	return &opError{op: op, err: err}
}

type opError struct {
	op    string
	err   error
	after time.Duration
}

func (e *opError) Error() string {
	if e.after > 0 {
		return e.op + ": " + e.err.Error() + " after " + e.after.String()
	}
	return e.op + ": " + e.err.Error()
}

func (e *opError) Unwrap() error { return e.err }

// dialer connects from bind:port (bindto, bind_port) when either is set, and
// from an address the kernel chooses otherwise; with mark set, its socket
// carries it (SO_MARK, as keepalived's checker fwmark).
func dialer(network string, bind netip.Addr, port uint16, mark uint32) *net.Dialer {
	d := &net.Dialer{}
	if mark != 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
			}); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("set the socket mark %#x: %w", mark, serr)
			}
			return nil
		}
	}
	if !bind.IsValid() && port == 0 {
		return d
	}
	ip, zone := net.IP(bind.AsSlice()), bind.Zone()
	switch network {
	case "udp":
		d.LocalAddr = &net.UDPAddr{IP: ip, Port: int(port), Zone: zone}
	default:
		d.LocalAddr = &net.TCPAddr{IP: ip, Port: int(port), Zone: zone}
	}
	return d
}

// abortOnDone makes I/O on conn fail at once when ctx is done. Call the
// returned function when the I/O is over.
func abortOnDone(ctx context.Context, conn net.Conn) func() bool {
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
}
