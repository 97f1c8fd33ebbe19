package health

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bodyServer serves its current body at every path.
type bodyServer struct {
	body atomic.Value // string
	ap   netip.AddrPort
}

func newBodyServer(t *testing.T, body string) *bodyServer {
	t.Helper()
	s := &bodyServer{}
	s.body.Store(body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, s.body.Load().(string))
	}))
	t.Cleanup(srv.Close)
	s.ap = netip.MustParseAddrPort(srv.Listener.Addr().String())
	return s
}

func (s *bodyServer) check(rx Regex) Result {
	return (&HTTPCheck{Addr: s.ap, Timeout: time.Second, URLs: []URL{{Path: "/", Regex: &rx}}}).Check(context.Background())
}

func TestHTTPRegex(t *testing.T) {
	anywhere := int64(-1)
	for _, tc := range []struct {
		name string
		body string
		rx   Regex
		up   bool
	}{
		{"match", "status: ready\n", Regex{Expr: "ready", MaxOffset: anywhere}, true},
		{"no match", "status: draining\n", Regex{Expr: "ready", MaxOffset: anywhere}, false},
		{"regex_no_match: a match fails", "status: error\n", Regex{Expr: "error", NoMatch: true, MaxOffset: anywhere}, false},
		{"regex_no_match: no match passes", "status: fine\n", Regex{Expr: "error", NoMatch: true, MaxOffset: anywhere}, true},
		{"an empty body never matches", "", Regex{Expr: ".*", MaxOffset: anywhere}, false},
		{"min offset: a match before it does not count", "ok.......", Regex{Expr: "ok", MinOffset: 3, MaxOffset: anywhere}, false},
		{"min offset: a match after it does", "ok.....ok", Regex{Expr: "ok", MinOffset: 3, MaxOffset: anywhere}, true},
		{"min offset: at it", "abcok", Regex{Expr: "ok", MinOffset: 3, MaxOffset: anywhere}, true},
		{"min offset: ^ never matches past the start", "ok\nok", Regex{Expr: "^ok", MinOffset: 1, MaxOffset: anywhere}, false},
		{"min offset: (?m)^ sees the newline before it", "xx\nok", Regex{Expr: "(?m)^ok", MinOffset: 3, MaxOffset: anywhere}, true},
		{`min offset: \b sees the byte before it`, "xxok", Regex{Expr: `\bok`, MinOffset: 2, MaxOffset: anywhere}, false},
		{"max offset: a match starting at it", "...ok", Regex{Expr: "ok", MaxOffset: 3}, true},
		{"max offset: a match starting after it", "....ok", Regex{Expr: "ok", MaxOffset: 3}, false},
		{"firstline: on the first line", "a ok\nb", Regex{Expr: "ok", MaxOffset: anywhere, FirstLine: true}, true},
		{"firstline: on a later line", "a\nb ok", Regex{Expr: "ok", MaxOffset: anywhere, FirstLine: true}, false},
		{"a long body is searched to its end", strings.Repeat("x", 1<<20) + "ready", Regex{Expr: "ready", MaxOffset: anywhere}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newBodyServer(t, tc.body).check(tc.rx)
			assert.Equal(t, tc.up, r.Up, "%v", r.Err)
			if !tc.up {
				assert.ErrorIs(t, r.Err, ErrRegex)
			}
		})
	}
}

func TestHTTPRegexAndDigest(t *testing.T) {
	// The regex reads the body the digest is computed over: both hold.
	body := strings.Repeat("0123456789", 1000) + "ready"
	s := newBodyServer(t, body)
	r := (&HTTPCheck{Addr: s.ap, Timeout: time.Second, URLs: []URL{{Path: "/", Digest: md5hex(body),
		Regex: &Regex{Expr: "0123", MaxOffset: -1}}}}).Check(context.Background())
	assert.True(t, r.Up, "%v", r.Err)
	r = (&HTTPCheck{Addr: s.ap, Timeout: time.Second, URLs: []URL{{Path: "/", Digest: md5hex(body + "x"),
		Regex: &Regex{Expr: "0123", MaxOffset: -1}}}}).Check(context.Background())
	assert.ErrorIs(t, r.Err, ErrDigest)
}

// TestRegexRealLeavesAndRejoins runs HTTP_GET with a regex on the Monitor:
// the real goes down when the page stops matching, though its status stays
// 200, and comes back when it matches again.
func TestRegexRealLeavesAndRejoins(t *testing.T) {
	s := newBodyServer(t, "<p>state: ready</p>")
	clock := newFakeClock()
	h := startMonitorClock(t, clock, MonitorConfig{Probes: []Probe{{Name: "HTTP_GET " + s.ap.String(),
		Checker: &HTTPCheck{Addr: s.ap, Timeout: time.Second, URLs: []URL{{Path: "/", Regex: &Regex{Expr: `state: ready`, MaxOffset: -1}}}},
		Policy:  Policy{DelayLoop: 10 * time.Second}}}})
	assert.Empty(t, drain(h.out))
	s.body.Store("<p>state: maintenance</p>")
	ts := h.step(10*time.Second, 1)
	require.Len(t, ts, 1)
	assert.False(t, ts[0].Up)
	assert.Contains(t, ts[0].Reason, "does not match")
	s.body.Store("<p>state: ready</p>")
	ts = h.step(10*time.Second, 1)
	require.Len(t, ts, 1)
	assert.True(t, ts[0].Up)
}
