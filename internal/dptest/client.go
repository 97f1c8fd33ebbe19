package dptest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Conn is a client's TCP connection to the VIP, speaking HTTP/1.1.
type Conn struct {
	c  net.Conn
	br *bufio.Reader
	// Client is the connection's address on the client, as the data
	// plane's connection table has it.
	Client netip.AddrPort
	// Real is who answered the first request ("r1"...).
	Real string
	// Err is why the connection or its first request failed.
	Err error
}

// dial connects from src (the zero Addr: the client's own address).
func (r *Rig) dial(src netip.Addr, timeout time.Duration) (*Conn, error) {
	return r.dialFrom(netip.AddrPortFrom(src, 0), timeout)
}

// dialFrom connects from src's address (as dial) and port (0: any).
func (r *Rig) dialFrom(src netip.AddrPort, timeout time.Duration) (*Conn, error) {
	var c net.Conn
	err := r.Topo.Client.Do(func() (err error) {
		d := net.Dialer{Timeout: timeout, KeepAlive: -1}
		if a := src.Addr(); (a.IsValid() && a != r.Topo.ClientAddr) || src.Port() != 0 {
			if !a.IsValid() {
				a = r.Topo.ClientAddr
			}
			port := src.Port()
			if port == 0 {
				port = r.freshPort()
			}
			d.LocalAddr = &net.TCPAddr{IP: a.AsSlice(), Port: int(port)}
		}
		c, err = d.Dial("tcp", netip.AddrPortFrom(r.Key.Addr, r.Key.Port).String())
		return err
	})
	if err != nil {
		return nil, err
	}
	a := c.LocalAddr().(*net.TCPAddr).AddrPort()
	from := netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	if r.tuples[from] {
		c.Close()
		return nil, fmt.Errorf("dptest: %s connected from twice: the data plane still holds the first flow, and a SYN on it is no new connection", from)
	}
	if r.tuples == nil {
		r.tuples = map[netip.AddrPort]bool{}
	}
	r.tuples[from] = true
	return &Conn{c: c, br: bufio.NewReader(c), Client: from}, nil
}

// freshPort is a port for an extra client address to connect from. Bound
// with port 0 the kernel picks one at random, and a pick repeated while the
// director still holds the earlier flow (FIN_WAIT, 2 minutes) is a SYN on
// that flow: IPVS and XDP both keep it on its real (is_new_conn_expected is
// false in FIN_WAIT), so one connection is counted where the model counts
// two. Ports below the ephemeral range, each used once per rig, cannot
// repeat and never meet the kernel's own picks for the client's address.
func (r *Rig) freshPort() uint16 {
	if r.nextPort == 0 {
		r.nextPort = 10000
	}
	r.nextPort++
	return r.nextPort
}

// Once makes one request on a new connection from src and closes it the
// way a browser does with "Connection: close": it reads the answer and the
// server's FIN, then closes. The director sees the client's FIN and the
// connection goes to FIN_WAIT, inactive.
func (r *Rig) Once(t *testing.T, src netip.Addr) *Conn {
	t.Helper()
	return r.OnceFrom(t, netip.AddrPortFrom(src, 0))
}

// OnceFrom is Once from a source port of the test's choosing too (0: any).
func (r *Rig) OnceFrom(t *testing.T, src netip.AddrPort) *Conn {
	t.Helper()
	c, err := r.dialFrom(src, waitIO)
	if err != nil {
		return &Conn{Err: err}
	}
	defer c.c.Close()
	c.Real, c.Err = c.get(true, waitIO)
	if c.Err != nil {
		return c
	}
	// Wait for the server's FIN: closing with its FIN unread is a clean
	// close too, but waiting keeps every close the same.
	_ = c.c.SetReadDeadline(time.Now().Add(waitIO))
	if _, err := io.Copy(io.Discard, c.br); err != nil {
		c.Err = fmt.Errorf("wait for the server to close: %w", err)
	}
	return c
}

// Hold opens a keep-alive connection from src and makes its first request;
// the connection is closed when the test ends.
func (r *Rig) Hold(t *testing.T, src netip.Addr) *Conn {
	t.Helper()
	c, err := r.dial(src, waitIO)
	if err != nil {
		return &Conn{Err: err}
	}
	t.Cleanup(func() { c.c.Close() })
	c.Real, c.Err = c.get(false, waitIO)
	return c
}

// Get makes another request on a held connection and returns who
// answered.
func (c *Conn) Get(t *testing.T) string {
	t.Helper()
	name, err := c.get(false, waitIO)
	require.NoError(t, err, "request on the connection from %s", c.Client)
	return name
}

// TryGet makes a request and gives it wait to be answered.
func (c *Conn) TryGet(wait time.Duration) (string, error) { return c.get(false, wait) }

// Close closes the connection (the client's FIN).
func (c *Conn) Close() error { return c.c.Close() }

func (c *Conn) get(closing bool, wait time.Duration) (string, error) {
	if err := c.c.SetDeadline(time.Now().Add(wait)); err != nil {
		return "", err
	}
	req := "GET / HTTP/1.1\r\nHost: vip\r\n"
	if closing {
		req += "Connection: close\r\n"
	}
	if _, err := io.WriteString(c.c, req+"\r\n"); err != nil {
		return "", fmt.Errorf("send request: %w", err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return "", fmt.Errorf("read answer: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("answer: %s", resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

// isTimeout says whether err is a deadline passing (a dropped packet), as
// against a refusal.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
