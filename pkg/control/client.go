package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

// ErrNotRunning means no daemon listens on the socket.
var ErrNotRunning = errors.New("the xlb daemon is not running")

// Client talks to the daemon.
type Client struct {
	path string
	http *http.Client
}

// NewClient returns a client of the daemon listening on path.
func NewClient(path string) *Client {
	return &Client{path: path, http: &http.Client{
		Timeout: 10 * time.Second,
		// One connection per request, closed after: a command makes one
		// or two, and the daemon serves a bounded number at a time.
		Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialUnix(ctx, path)
		}},
	}}
}

// dialUnix connects to the socket at path. A unix socket whose accept
// queue is full refuses a connect with EAGAIN at once, where TCP would
// wait: under a burst (thousands of clients, or connections held by a
// hostile one while the daemon closes them) that is a refusal of a moment,
// so it is tried again until ctx ends.
func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil || !errors.Is(err, syscall.EAGAIN) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

func (c *Client) get(path string, v any) error {
	return c.do(http.MethodGet, path, nil, v)
}

// closedEarly is a connection the daemon closed before answering: at its
// connection cap it closes connections it has read nothing from (held
// ones, and now and then one slow to send), so the request was not read
// and is sent again.
func closedEarly(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (c *Client) do(method, path string, body any, v any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	var resp *http.Response
	var err error
	for try := 0; ; try++ {
		var rd io.Reader
		if b != nil {
			rd = bytes.NewReader(b)
		}
		req, rerr := http.NewRequest(method, "http://xlb"+path, rd)
		if rerr != nil {
			return rerr
		}
		resp, err = c.http.Do(req)
		if err == nil || !closedEarly(err) || try == 3 {
			break
		}
		time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("%w (no daemon on %s; start it with: xlb run -f /etc/keepalived/keepalived.conf)", ErrNotRunning, c.path)
		}
		if errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("control socket %s: permission denied (it is root's)", c.path)
		}
		return fmt.Errorf("control socket %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("control socket: %s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Ipvsadm runs an ipvsadm command line in the daemon.
func (c *Client) Ipvsadm(args []string, stdin string) (IpvsadmResponse, error) {
	var r IpvsadmResponse
	err := c.do(http.MethodPost, "/v1/ipvsadm", IpvsadmRequest{Args: args, Stdin: stdin}, &r)
	return r, err
}

// Status asks the daemon for its state.
func (c *Client) Status() (Status, error) {
	var st Status
	err := c.get("/v1/status", &st)
	return st, err
}
