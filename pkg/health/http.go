package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // keepalived's digest is MD5; it is not used for security
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// HTTPCheck is keepalived's HTTP_GET, or SSL_GET with TLS set: up when every
// url answers with one of its status codes and, if the url has a digest, a
// body whose MD5 matches it. The urls are fetched in order, each on its own
// connection; the first that fails fails the check.
//
// The request is keepalived's: "GET path HTTP/1.0" (or 1.1), User-Agent
// KeepAliveClient, Host the virtualhost or else Addr, and "Connection: close"
// with Protocol "1.0C" or "1.1". The digest is over the raw bytes after the
// response headers (no chunked decoding, as keepalived and genhash), up to
// Content-Length when the server sends one and to the end of the stream
// otherwise.
type HTTPCheck struct {
	Addr     netip.AddrPort // connect_ip and connect_port
	Bind     netip.Addr     // bindto; zero lets the kernel choose
	BindPort uint16         // bind_port; zero lets the kernel choose
	Mark     uint32         // SO_MARK: a check through the data path (dataplane.CheckRouter); 0 none
	// Timeout bounds each url's whole exchange: connect, TLS handshake,
	// request and response. Zero means DefaultConnectTimeout. (keepalived
	// applies connect_timeout to each step; a whole-exchange bound is
	// stricter only for servers that trickle a response.)
	Timeout time.Duration

	// TLS makes this SSL_GET. The server's certificate is not verified,
	// as keepalived does not without an SSL block.
	TLS bool
	// SNI sends the virtualhost as the TLS server name (enable_sni).
	SNI bool
	// VirtualHost is the Host header for urls without their own; empty
	// sends Addr ("10.0.0.1:80", "[2001:db8::1]:80").
	VirtualHost string
	// Protocol is http_protocol: "1.0" (the default when empty), "1.0C"
	// (1.0 with Connection: close) or "1.1" (with Connection: close).
	Protocol string

	URLs []URL
}

// URL is a url block.
type URL struct {
	Path string // sent as is; "" sends "/"
	// Digest is the MD5 of the body as 32 hex digits; empty skips the
	// digest check.
	Digest string
	// StatusCodes are the accepted statuses; nil accepts 200-299.
	StatusCodes []StatusRange
	// VirtualHost is this url's Host header, overriding the checker's.
	VirtualHost string
	// Regex, if set, must match the body (or, with NoMatch, must not).
	Regex *Regex
}

// Regex is a url's regex, regex_no_match, regex_min_offset,
// regex_max_offset and regex_options firstline, matched against the body
// as keepalived 2.2.7 matches it with PCRE2 (check_regex in check_http.c):
//
//   - the body is every byte after the headers (up to Content-Length when
//     the server sends one), searched as one stream however it arrives;
//     an empty body never matches;
//   - a match must start at or after MinOffset, with the bytes before it
//     still seen by \b and (?m)^, and ^ (without (?m)) never matching
//     there, as PCRE2's start offset works;
//   - it must start at or before MaxOffset unless that is negative, and
//     with FirstLine at or before the first newline after MinOffset.
//
// The check fails when the body matches and NoMatch is set, or does not
// and NoMatch is not.
type Regex struct {
	// Expr is the pattern in Go's regexp (RE2) syntax: pkg/config
	// translates keepalived's PCRE2 pattern and regex_options into it.
	Expr      string
	NoMatch   bool
	MinOffset int64
	MaxOffset int64 // negative: no limit
	FirstLine bool
}

// StatusRange is an inclusive range of HTTP status codes, Min == Max for a
// single one.
type StatusRange struct {
	Min, Max int
}

// DefaultStatusCodes are the statuses a url accepts when it sets none.
var DefaultStatusCodes = []StatusRange{{200, 299}}

// Check fetches every url in order.
func (c *HTTPCheck) Check(ctx context.Context) Result {
	if !c.Addr.IsValid() {
		return down(errors.New("http check: no address to connect to"))
	}
	for i := range c.URLs {
		if err := c.fetch(ctx, &c.URLs[i]); err != nil {
			return down(fmt.Errorf("url %s: %w", c.URLs[i].Path, err))
		}
	}
	return up()
}

func (c *HTTPCheck) fetch(ctx context.Context, u *URL) error {
	req, err := c.request(u)
	if err != nil {
		return err
	}
	var want []byte
	if u.Digest != "" {
		want, err = hex.DecodeString(u.Digest)
		if err != nil || len(want) != md5.Size {
			return fmt.Errorf("digest %q is not 32 hex digits", u.Digest)
		}
	}

	timeout := connectTimeout(c.Timeout)
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := dialer("tcp", c.Bind, c.BindPort, c.Mark)
	conn, err := d.DialContext(ctx, "tcp", c.Addr.String())
	if err != nil {
		return ioError(parent, "connect "+c.Addr.String(), timeout, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	defer abortOnDone(ctx, conn)()

	if c.TLS {
		cfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // as keepalived's SSL_GET
		if c.SNI {
			cfg.ServerName = c.sniName(u)
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return ioError(parent, "tls handshake with "+c.Addr.String(), timeout, err)
		}
		conn = tc
	}

	if _, err := io.WriteString(conn, req); err != nil {
		return ioError(parent, "send request to "+c.Addr.String(), timeout, err)
	}
	var m *bodyMatcher
	if u.Regex != nil {
		if m, err = newBodyMatcher(u.Regex); err != nil {
			return err
		}
	}
	status, sum, err := readResponse(bufio.NewReader(conn), want != nil, m)
	if err != nil {
		return ioError(parent, "read response from "+c.Addr.String(), timeout, err)
	}
	if !statusOK(status, u.StatusCodes) {
		return fmt.Errorf("%w %d", ErrStatusCode, status)
	}
	if want != nil && !bytes.Equal(sum, want) {
		return fmt.Errorf("%w: got %x, want %x", ErrDigest, sum, want)
	}
	if m != nil && m.matched == u.Regex.NoMatch {
		if m.matched {
			return fmt.Errorf("%w: the body matches %s (regex_no_match)", ErrRegex, u.Regex.Expr)
		}
		return fmt.Errorf("%w: the body does not match %s", ErrRegex, u.Regex.Expr)
	}
	return nil
}

// request is the GET keepalived sends for u.
func (c *HTTPCheck) request(u *URL) (string, error) {
	path := u.Path
	if path == "" {
		path = "/"
	}
	if strings.ContainsAny(path, " \r\n") {
		return "", fmt.Errorf("path %q has a space or line break", path)
	}
	host := c.host(u)
	if strings.ContainsAny(host, " \r\n") {
		return "", fmt.Errorf("virtualhost %q has a space or line break", host)
	}
	minor, conn := 0, ""
	switch c.Protocol {
	case "", "1.0":
	case "1.0C", "1.0c":
		conn = "Connection: close\r\n"
	case "1.1":
		minor, conn = 1, "Connection: close\r\n"
	default:
		return "", fmt.Errorf("http_protocol %q is not 1.0, 1.0C or 1.1", c.Protocol)
	}
	return fmt.Sprintf("GET %s HTTP/1.%d\r\nUser-Agent: KeepAliveClient\r\n%sHost: %s\r\n\r\n",
		path, minor, conn, host), nil
}

// sniName is the virtualhost without a port: keepalived sends SNI only for a
// virtualhost.
func (c *HTTPCheck) sniName(u *URL) string {
	vh := u.VirtualHost
	if vh == "" {
		vh = c.VirtualHost
	}
	if h, _, err := net.SplitHostPort(vh); err == nil {
		return h
	}
	return vh
}

func (c *HTTPCheck) host(u *URL) string {
	switch {
	case u.VirtualHost != "":
		return u.VirtualHost
	case c.VirtualHost != "":
		return c.VirtualHost
	}
	return c.Addr.String()
}

// readResponse reads a response to its end and returns its status and, with
// digest set, the MD5 of its body. A non-nil m is matched against the body.
func readResponse(r *bufio.Reader, digest bool, m *bodyMatcher) (status int, sum []byte, err error) {
	tp := textproto.NewReader(r)
	line, err := tp.ReadLine()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, ErrNoResponse
		}
		return 0, nil, err
	}
	status, err = parseStatusLine(line)
	if err != nil {
		return 0, nil, err
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return 0, nil, fmt.Errorf("headers: %w", err)
	}
	var body io.Reader = r
	if cl, err := strconv.ParseInt(hdr.Get("Content-Length"), 10, 64); err == nil && cl >= 0 {
		body = io.LimitReader(r, cl)
	}
	h := md5.New() //nolint:gosec // see the import
	var sink io.Writer = io.Discard
	if digest {
		sink = h
	}
	if m != nil {
		body = io.TeeReader(body, sink)
		sink = io.Discard
		if err := m.match(body); err != nil {
			return 0, nil, fmt.Errorf("body: %w", err)
		}
	}
	if _, err := io.Copy(sink, body); err != nil {
		return 0, nil, fmt.Errorf("body: %w", err)
	}
	if digest {
		sum = h.Sum(nil)
	}
	return status, sum, nil
}

// parseStatusLine returns the status code of "HTTP/1.1 200 OK".
func parseStatusLine(line string) (int, error) {
	proto, rest, _ := strings.Cut(line, " ")
	if !strings.HasPrefix(proto, "HTTP/") {
		return 0, fmt.Errorf("malformed status line %q", truncate(line, 64))
	}
	code, _, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
	n, err := strconv.Atoi(code)
	if err != nil || len(code) != 3 || n < 100 {
		return 0, fmt.Errorf("malformed status line %q", truncate(line, 64))
	}
	return n, nil
}

func statusOK(status int, codes []StatusRange) bool {
	if len(codes) == 0 {
		codes = DefaultStatusCodes
	}
	for _, r := range codes {
		if status >= r.Min && status <= r.Max {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
