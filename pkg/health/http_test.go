package health

import (
	"bufio"
	"context"
	"crypto/md5" //nolint:gosec // keepalived's digest
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func md5hex(s string) string {
	sum := md5.Sum([]byte(s)) //nolint:gosec // keepalived's digest
	return hex.EncodeToString(sum[:])
}

// seen is what a test server saw of the requests it got.
type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *seen) add(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
}

func (s *seen) all() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

// webServer serves /status/N with status N, /body/TEXT with body TEXT, and
// anything else with 200 "ok".
func webServer(s *seen) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.add(r)
		switch {
		case strings.HasPrefix(r.URL.Path, "/status/"):
			var code int
			_, _ = fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/status/"), &code)
			w.WriteHeader(code)
		case strings.HasPrefix(r.URL.Path, "/body/"):
			_, _ = io.WriteString(w, strings.TrimPrefix(r.URL.Path, "/body/"))
		default:
			_, _ = io.WriteString(w, "ok")
		}
	})
}

func startWeb(t *testing.T, s *seen) netip.AddrPort {
	t.Helper()
	srv := httptest.NewServer(webServer(s))
	t.Cleanup(srv.Close)
	return addrPort(t, srv.Listener.Addr())
}

func TestHTTPCheckStatus(t *testing.T) {
	addr := startWeb(t, &seen{})
	for _, tc := range []struct {
		path  string
		codes []StatusRange
		up    bool
	}{
		{"/status/200", nil, true},
		{"/status/204", nil, true},
		{"/status/299", nil, true},
		{"/status/301", nil, false}, // redirects are not followed
		{"/status/404", nil, false},
		{"/status/500", nil, false},
		{"/status/404", []StatusRange{{404, 404}}, true},
		{"/status/200", []StatusRange{{404, 404}}, false},
		{"/status/302", []StatusRange{{200, 200}, {301, 303}}, true},
		{"/status/503", []StatusRange{{200, 200}, {301, 303}}, false},
	} {
		t.Run(fmt.Sprintf("%s %v", tc.path, tc.codes), func(t *testing.T) {
			c := &HTTPCheck{Addr: addr, Timeout: time.Second, URLs: []URL{{Path: tc.path, StatusCodes: tc.codes}}}
			r := c.Check(context.Background())
			assert.Equal(t, tc.up, r.Up, "%v", r.Err)
			if !tc.up {
				assert.ErrorIs(t, r.Err, ErrStatusCode)
				assert.Contains(t, r.Err.Error(), tc.path)
			}
		})
	}
}

func TestHTTPCheckDigest(t *testing.T) {
	addr := startWeb(t, &seen{})
	body := "hello-keepalived"
	for _, tc := range []struct {
		name, path, digest string
		up                 bool
	}{
		{"match", "/body/" + body, md5hex(body), true},
		{"match upper case", "/body/" + body, strings.ToUpper(md5hex(body)), true},
		{"mismatch", "/body/" + body, md5hex("something else"), false},
		{"empty body", "/body/", md5hex(""), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &HTTPCheck{Addr: addr, Timeout: time.Second, URLs: []URL{{Path: tc.path, Digest: tc.digest}}}
			r := c.Check(context.Background())
			assert.Equal(t, tc.up, r.Up, "%v", r.Err)
			if !tc.up {
				assert.ErrorIs(t, r.Err, ErrDigest)
			}
		})
	}

	r := (&HTTPCheck{Addr: addr, URLs: []URL{{Path: "/", Digest: "not-hex"}}}).Check(context.Background())
	assert.False(t, r.Up)
	assert.ErrorContains(t, r.Err, "32 hex digits")
}

// TestHTTPCheckDigestWholeBody hashes a body sent in many writes, without a
// Content-Length (read to the end of the stream) and with one (read to it).
func TestHTTPCheckDigestWholeBody(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 64<<10/16) // 64 KiB
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/length" {
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		}
		for i := 0; i < len(big); i += 4096 {
			_, _ = io.WriteString(w, big[i:i+4096])
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	c := &HTTPCheck{Addr: addrPort(t, srv.Listener.Addr()), Timeout: 2 * time.Second, URLs: []URL{
		{Path: "/stream", Digest: md5hex(big)},
		{Path: "/length", Digest: md5hex(big)},
	}}
	r := c.Check(context.Background())
	assert.True(t, r.Up, "%v", r.Err)
}

func TestHTTPCheckSeveralURLs(t *testing.T) {
	var s seen
	addr := startWeb(t, &s)
	all := &HTTPCheck{Addr: addr, Timeout: time.Second, URLs: []URL{
		{Path: "/health"},
		{Path: "/body/x", Digest: md5hex("x")},
		{Path: "/status/404", StatusCodes: []StatusRange{{404, 404}}},
	}}
	r := all.Check(context.Background())
	require.True(t, r.Up, "%v", r.Err)
	var paths []string
	for _, req := range s.all() {
		paths = append(paths, req.URL.Path)
	}
	assert.Equal(t, []string{"/health", "/body/x", "/status/404"}, paths, "every url, in order")

	oneBad := &HTTPCheck{Addr: addr, Timeout: time.Second, URLs: []URL{
		{Path: "/health"},
		{Path: "/status/500"},
		{Path: "/never"},
	}}
	r = oneBad.Check(context.Background())
	assert.False(t, r.Up)
	assert.ErrorIs(t, r.Err, ErrStatusCode)
	assert.Contains(t, r.Err.Error(), "/status/500")
	assert.Len(t, s.all(), 5, "the check stops at the first failing url")
}

func TestHTTPCheckRequest(t *testing.T) {
	var s seen
	addr := startWeb(t, &s)
	for _, tc := range []struct {
		name      string
		check     HTTPCheck
		url       URL
		host      string
		proto     string
		connClose bool
	}{
		{"defaults", HTTPCheck{}, URL{}, addr.String(), "HTTP/1.0", false},
		{"virtualhost", HTTPCheck{VirtualHost: "www.example.org"}, URL{Path: "/a?b=c"}, "www.example.org", "HTTP/1.0", false},
		{"url virtualhost wins", HTTPCheck{VirtualHost: "www.example.org"}, URL{VirtualHost: "api.example.org:8080"}, "api.example.org:8080", "HTTP/1.0", false},
		{"1.0C", HTTPCheck{Protocol: "1.0C"}, URL{}, addr.String(), "HTTP/1.0", true},
		{"1.1", HTTPCheck{Protocol: "1.1"}, URL{}, addr.String(), "HTTP/1.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.all())
			c := tc.check
			c.Addr, c.Timeout, c.URLs = addr, time.Second, []URL{tc.url}
			r := c.Check(context.Background())
			require.True(t, r.Up, "%v", r.Err)
			reqs := s.all()
			require.Len(t, reqs, before+1)
			req := reqs[before]
			assert.Equal(t, http.MethodGet, req.Method)
			assert.Equal(t, tc.host, req.Host)
			assert.Equal(t, tc.proto, req.Proto)
			assert.Equal(t, "KeepAliveClient", req.UserAgent())
			assert.Equal(t, tc.connClose, req.Header.Get("Connection") == "close")
			if tc.url.Path != "" {
				assert.Equal(t, tc.url.Path, req.RequestURI)
			} else {
				assert.Equal(t, "/", req.RequestURI)
			}
		})
	}

	bad := &HTTPCheck{Addr: addr, URLs: []URL{{Path: "/x\r\nEvil: 1"}}}
	assert.ErrorContains(t, bad.Check(context.Background()).Err, "line break")
	bad = &HTTPCheck{Addr: addr, Protocol: "2", URLs: []URL{{Path: "/"}}}
	assert.ErrorContains(t, bad.Check(context.Background()).Err, "http_protocol")
}

func TestHTTPCheckNoURLs(t *testing.T) {
	// keepalived: "if there are no URLs in list, enable server w/o checking"
	r := (&HTTPCheck{Addr: closedPort(t)}).Check(context.Background())
	assert.True(t, r.Up)
}

func TestHTTPSCheck(t *testing.T) {
	var s seen
	var mu sync.Mutex
	var sni []string
	srv := httptest.NewUnstartedServer(webServer(&s))
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		sni = append(sni, h.ServerName)
		return nil, nil
	}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the plain-HTTP probe below is expected
	srv.StartTLS()                                   // a self-signed certificate the check must accept
	t.Cleanup(srv.Close)
	addr := addrPort(t, srv.Listener.Addr())

	c := &HTTPCheck{Addr: addr, TLS: true, Timeout: time.Second, VirtualHost: "www.example.org:443",
		URLs: []URL{{Path: "/body/tls", Digest: md5hex("tls")}, {Path: "/status/201"}}}
	r := c.Check(context.Background())
	require.True(t, r.Up, "%v", r.Err)
	c.SNI = true
	r = c.Check(context.Background())
	require.True(t, r.Up, "%v", r.Err)
	mu.Lock()
	assert.Equal(t, []string{"", "", "www.example.org", "www.example.org"}, sni, "SNI only with enable_sni, without the port")
	mu.Unlock()
	reqs := s.all()
	require.NotEmpty(t, reqs)
	assert.NotNil(t, reqs[0].TLS)
	assert.Equal(t, "www.example.org:443", reqs[0].Host)

	r = (&HTTPCheck{Addr: addr, Timeout: time.Second, URLs: []URL{{Path: "/"}}}).Check(context.Background())
	assert.False(t, r.Up, "plain HTTP to a TLS server fails")

	plain := startWeb(t, &seen{})
	r = (&HTTPCheck{Addr: plain, TLS: true, Timeout: time.Second, URLs: []URL{{Path: "/"}}}).Check(context.Background())
	assert.False(t, r.Up, "TLS to a plain HTTP server fails")
	assert.ErrorContains(t, r.Err, "tls handshake")
}

func TestHTTPCheckTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	start := time.Now()
	r := (&HTTPCheck{Addr: addrPort(t, srv.Listener.Addr()), Timeout: 200 * time.Millisecond,
		URLs: []URL{{Path: "/slow"}}}).Check(context.Background())
	took := time.Since(start)
	assert.False(t, r.Up)
	assert.ErrorIs(t, r.Err, ErrTimeout)
	assert.GreaterOrEqual(t, took, 200*time.Millisecond)
	assert.Less(t, took, 2*time.Second)

	// A cancelled check is not a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	r = (&HTTPCheck{Addr: addrPort(t, srv.Listener.Addr()), Timeout: 5 * time.Second,
		URLs: []URL{{Path: "/slow"}}}).Check(ctx)
	assert.False(t, r.Up)
	assert.ErrorIs(t, r.Err, context.Canceled)
	assert.NotErrorIs(t, r.Err, ErrTimeout)
}

func TestHTTPCheckConnectTimeout(t *testing.T) {
	r := (&HTTPCheck{Addr: blackhole(t), Timeout: 150 * time.Millisecond, URLs: []URL{{Path: "/"}}}).Check(context.Background())
	assert.False(t, r.Up)
	assert.ErrorIs(t, r.Err, ErrTimeout)
}

func TestHTTPCheckRefused(t *testing.T) {
	r := (&HTTPCheck{Addr: closedPort(t), Timeout: time.Second, URLs: []URL{{Path: "/"}}}).Check(context.Background())
	assert.False(t, r.Up)
	assert.ErrorContains(t, r.Err, "connect")
}

// rawServer answers every connection with reply and closes it.
func rawServer(t *testing.T, reply string) netip.AddrPort {
	t.Helper()
	ln := listenTCP(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				br := bufio.NewReader(c)
				for { // the request ends at an empty line
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				_, _ = io.WriteString(c, reply)
			}()
		}
	}()
	return addrPort(t, ln.Addr())
}

func TestHTTPCheckRawResponses(t *testing.T) {
	for _, tc := range []struct {
		name, reply, digest string
		up                  bool
		err                 error
	}{
		{"closed without a response", "", "", false, ErrNoResponse},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", "", false, nil},
		{"HTTP/1.0 without headers", "HTTP/1.0 200 OK\r\n\r\nbody", md5hex("body"), true, nil},
		{"chunked body hashed raw, as keepalived", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n",
			md5hex("4\r\nbody\r\n0\r\n\r\n"), true, nil},
		{"bytes after Content-Length ignored", "HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nbodyXXXX", md5hex("body"), true, nil},
		{"status only", "HTTP/1.0 418 I'm a teapot\r\n\r\n", "", false, ErrStatusCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawServer(t, tc.reply)
			r := (&HTTPCheck{Addr: addr, Timeout: time.Second, URLs: []URL{{Path: "/", Digest: tc.digest}}}).Check(context.Background())
			assert.Equal(t, tc.up, r.Up, "%v", r.Err)
			if tc.err != nil {
				assert.ErrorIs(t, r.Err, tc.err)
			}
		})
	}
}

func TestHTTPCheckBindTo(t *testing.T) {
	src := loopback2(t)
	var s seen
	addr := startWeb(t, &s)
	r := (&HTTPCheck{Addr: addr, Bind: src, Timeout: time.Second, URLs: []URL{{Path: "/"}}}).Check(context.Background())
	require.True(t, r.Up, "%v", r.Err)
	host, _, err := net.SplitHostPort(s.all()[0].RemoteAddr)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.2", host)

	r = (&HTTPCheck{Addr: addr, Bind: netip.MustParseAddr("127.0.0.1"), Timeout: time.Second, URLs: []URL{{Path: "/"}}}).Check(context.Background())
	require.True(t, r.Up, "%v", r.Err)
}

func TestParseStatusLine(t *testing.T) {
	for line, want := range map[string]int{
		"HTTP/1.1 200 OK":        200,
		"HTTP/1.0 404 Not Found": 404,
		"HTTP/1.1 204":           204,
		"HTTP/1.1  301 Moved":    301,
		"HTTP/1.1 20 Short":      -1,
		"HTTP/1.1 abc Bad":       -1,
		"HTTP/1.1 099 Too small": -1,
		"ICY 200 OK":             -1,
		"":                       -1,
		"HTTP/1.1 2000 Too long": -1,
		"HTTP/1.1 +20 Signed":    -1,
	} {
		got, err := parseStatusLine(line)
		if want < 0 {
			assert.Error(t, err, line)
			continue
		}
		assert.NoError(t, err, line)
		assert.Equal(t, want, got, line)
	}
}

// TestHTTPCheckDown is every way a url goes down, for HTTP_GET and SSL_GET
// alike, with the sentinel error each is reported with.
func TestHTTPCheckDown(t *testing.T) {
	timeout := 100 * time.Millisecond
	if os.Getenv("VMTEST") != "" {
		timeout = time.Second // a TLS handshake under TCG takes longer than 100 ms
	}
	late := 20 * timeout // far beyond timeout; the check must not wait for it
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/late": // answers, but after the checker's timeout
			select {
			case <-time.After(late):
				_, _ = io.WriteString(w, "too late")
			case <-r.Context().Done():
			}
		case "/trickle": // headers at once, the body after the timeout
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "12345")
			w.(http.Flusher).Flush()
			select {
			case <-time.After(late):
				_, _ = io.WriteString(w, "67890")
			case <-r.Context().Done():
			}
		default:
			webServer(&seen{}).ServeHTTP(w, r)
		}
	})
	for _, scheme := range []struct {
		name string
		tls  bool
	}{{"HTTP_GET", false}, {"SSL_GET", true}} {
		t.Run(scheme.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(handler)
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // clients that hang up mid-answer
			if scheme.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			addr := addrPort(t, srv.Listener.Addr())
			check := func(addr netip.AddrPort, u URL) (Result, time.Duration) {
				start := time.Now()
				r := (&HTTPCheck{Addr: addr, TLS: scheme.tls, Timeout: timeout, URLs: []URL{u}}).Check(context.Background())
				return r, time.Since(start)
			}

			r, _ := check(addr, URL{Path: "/body/fine", Digest: md5hex("fine")})
			require.True(t, r.Up, "the server is fine otherwise: %v", r.Err)

			for _, path := range []string{"/late", "/trickle"} {
				r, took := check(addr, URL{Path: path})
				assert.False(t, r.Up, path)
				assert.ErrorIs(t, r.Err, ErrTimeout, path)
				assert.Contains(t, r.Err.Error(), "after "+timeout.String(), path)
				assert.GreaterOrEqual(t, took, timeout, path)
				assert.Less(t, took, late/2, path)
			}

			r, took := check(silentServer(t), URL{Path: "/"})
			assert.False(t, r.Up)
			assert.ErrorIs(t, r.Err, ErrTimeout, "connected, then no byte back")
			assert.Less(t, took, late/2)
			if scheme.tls {
				assert.Contains(t, r.Err.Error(), "tls handshake")
			}

			r, _ = check(closedPort(t), URL{Path: "/"})
			assert.False(t, r.Up)
			assert.ErrorIs(t, r.Err, syscall.ECONNREFUSED)
			assert.NotErrorIs(t, r.Err, ErrTimeout)

			for _, u := range []URL{
				{Path: "/status/500"},
				{Path: "/status/200", StatusCodes: []StatusRange{{201, 299}}},
				{Path: "/status/404", StatusCodes: []StatusRange{{200, 299}, {401, 403}}},
			} {
				r, _ = check(addr, u)
				assert.False(t, r.Up, "%+v", u)
				assert.ErrorIs(t, r.Err, ErrStatusCode, "%+v", u)
				assert.NotErrorIs(t, r.Err, ErrDigest, "%+v", u)
			}

			r, _ = check(addr, URL{Path: "/body/fine", Digest: md5hex("different")})
			assert.False(t, r.Up)
			assert.ErrorIs(t, r.Err, ErrDigest)
			assert.Contains(t, r.Err.Error(), md5hex("fine"), "the digest got")
			assert.NotErrorIs(t, r.Err, ErrStatusCode)

			// Wrong status and a digest: the status is the reason, as it is
			// checked first.
			r, _ = check(addr, URL{Path: "/status/503", Digest: md5hex("")})
			assert.ErrorIs(t, r.Err, ErrStatusCode)
		})
	}
}

// silentServer accepts connections and never writes or reads on them: a
// server hung after accept, or a TLS port whose handshake never completes.
func silentServer(t *testing.T) netip.AddrPort {
	t.Helper()
	ln := listenTCP(t)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return addrPort(t, ln.Addr())
}
