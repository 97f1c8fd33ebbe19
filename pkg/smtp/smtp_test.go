package smtp

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mailServer is a real SMTP server on loopback that records each session
// and answers as codes says (the default: a server that takes the mail).
type mailServer struct {
	ln    net.Listener
	mu    sync.Mutex
	codes map[string]string // command -> reply line
	seen  [][]string        // per session, the lines received
	data  []string          // per mail, the DATA received
	wg    sync.WaitGroup    // the sessions under way
}

func newMailServer(t *testing.T) *mailServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &mailServer{ln: ln, codes: map[string]string{
		"": "220-mx.test ESMTP\r\n220 ready", "HELO": "250 mx.test", "MAIL": "250 ok", "RCPT": "250 ok",
		"DATA": "354 go ahead", ".": "250-queued\r\n250 as 1", "QUIT": "221 bye",
	}}
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(c) })
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-accepting; s.wg.Wait() })
	return s
}

func (s *mailServer) set(cmd, reply string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[cmd] = reply
}

func (s *mailServer) say(c net.Conn, cmd string) {
	s.mu.Lock()
	r := s.codes[cmd]
	s.mu.Unlock()
	_, _ = io.WriteString(c, r+"\r\n")
}

func (s *mailServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	var lines []string
	defer func() {
		s.mu.Lock()
		s.seen = append(s.seen, lines)
		s.mu.Unlock()
	}()
	s.say(c, "")
	inData := false
	var data strings.Builder
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if inData {
			if l == ".\r\n" {
				inData = false
				s.mu.Lock()
				s.data = append(s.data, data.String())
				s.mu.Unlock()
				s.say(c, ".")
				continue
			}
			data.WriteString(l)
			continue
		}
		l = strings.TrimRight(l, "\r\n")
		lines = append(lines, l)
		cmd, _, _ := strings.Cut(l, " ")
		cmd, _, _ = strings.Cut(cmd, ":")
		s.say(c, cmd)
		switch cmd {
		case "DATA":
			s.mu.Lock()
			ok := strings.HasPrefix(s.codes["DATA"], "354")
			s.mu.Unlock()
			inData = ok
		case "QUIT":
			return
		}
	}
}

func (s *mailServer) sessions() ([][]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.seen...), append([]string(nil), s.data...)
}

func TestSendAsKeepalived(t *testing.T) {
	ms := newMailServer(t)
	srv := &Server{Addr: ms.ln.Addr().String(), HeloName: "lb1", From: "lb1@example.org",
		To: []string{"ops@example.org", "noc@example.org"}, Timeout: time.Second}
	now := time.Date(2025, 3, 1, 9, 44, 8, 0, time.FixedZone("", 3600))
	m := RealServer("lb1", "[10.0.0.11]:tcp:80", "[10.0.0.100]:tcp:80", false, "=> TCP CHECK failed on service <=")
	require.NoError(t, srv.Send(context.Background(), m, now))

	ms.wg.Wait()
	seen, data := ms.sessions()
	require.Len(t, seen, 1)
	assert.Equal(t, []string{"HELO lb1", "MAIL FROM:<lb1@example.org>", "RCPT TO:<ops@example.org>", "RCPT TO:<noc@example.org>", "DATA", "QUIT"}, seen[0])
	require.Len(t, data, 1)
	assert.Equal(t, "Date: Sat, 01 Mar 2025 09:44:08 +0100\r\n"+
		"From: lb1@example.org\r\n"+
		"Subject: [lb1] Realserver [10.0.0.11]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN\r\n"+
		"X-Mailer: Keepalived\r\n"+
		"To: ops@example.org, noc@example.org\r\n"+
		"\r\n"+
		"=> TCP CHECK failed on service <=\r\n"+
		"\r\n", data[0])
}

func TestSendRefused(t *testing.T) {
	ms := newMailServer(t)
	ms.set("RCPT", "550 no such user")
	srv := &Server{Addr: ms.ln.Addr().String(), HeloName: "lb1", From: "a@b", To: []string{"x@y"}, Timeout: time.Second}
	err := srv.Send(context.Background(), Mail{Subject: "s", Body: "b"}, time.Now())
	assert.ErrorIs(t, err, ErrReply)
	assert.Contains(t, err.Error(), "RCPT cmd")
	ms.wg.Wait()
	seen, data := ms.sessions()
	assert.Equal(t, []string{"HELO lb1", "MAIL FROM:<a@b>", "RCPT TO:<x@y>", "QUIT"}, seen[0], "a refusal ends the session with QUIT, as keepalived does")
	assert.Empty(t, data)

	err = (&Server{Addr: closedAddr(t), To: []string{"x@y"}, Timeout: time.Second}).Send(context.Background(), Mail{}, time.Now())
	assert.Error(t, err, "no server")
}

func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a := ln.Addr().String()
	require.NoError(t, ln.Close())
	return a
}

func TestAlerterSendsInOrder(t *testing.T) {
	ms := newMailServer(t)
	a := NewAlerter(Server{Addr: ms.ln.Addr().String(), HeloName: "h", From: "f@h", To: []string{"o@h"}, Timeout: time.Second},
		slog.New(slog.DiscardHandler))
	for _, st := range []string{StateBackup, StateMaster, StateFault} {
		m, ok := Instance("lb1", "VI_1", st)
		require.True(t, ok)
		a.Alert(m)
	}
	a.Close(5 * time.Second)
	ms.wg.Wait()
	_, data := ms.sessions()
	require.Len(t, data, 3)
	for i, want := range []string{
		"Subject: [lb1] VRRP Instance VI_1 - Entering BACKUP state\r\n",
		"Subject: [lb1] VRRP Instance VI_1 - Entering MASTER state\r\n",
		"Subject: [lb1] VRRP Instance VI_1 - Entering FAULT state\r\n",
	} {
		assert.Contains(t, data[i], want)
	}
	assert.Contains(t, data[1], "\r\n\r\n=> VRRP Instance is now owning VRRP VIPs <=\r\n")
}

func TestMailWording(t *testing.T) {
	rs := Trio(netip.MustParseAddrPort("10.0.0.11:80"), "tcp")
	vs := Trio(netip.MustParseAddrPort("[2001:db8::1]:443"), "tcp")
	assert.Equal(t, "[10.0.0.11]:tcp:80", rs)
	assert.Equal(t, "[2001:db8::1]:tcp:443", vs)
	assert.Equal(t, "FWM 7", FWMarkName(7))
	assert.Equal(t, "[web]:0", GroupName("web", 0))

	assert.Equal(t, Mail{Subject: "[lb1] Realserver [10.0.0.11]:tcp:80 of virtual server [2001:db8::1]:tcp:443 - UP",
		Body: "=> CHECK succeed on service <="}, RealServer("lb1", rs, vs, true, "=> CHECK succeed on service <="))
	assert.Equal(t, Mail{Subject: "[lb1] Realserver [10.0.0.11]:tcp:80 of virtual server [2001:db8::1]:tcp:443 - DOWN",
		Body: "=> Removing <="}, RealServerRemoved("lb1", rs, vs, false))
	assert.Equal(t, Mail{Subject: "[lb1] Virtualserver [2001:db8::1]:tcp:443 - UP", Body: "=> Gained quorum 3+1=4 <= 5 <="},
		Quorum("lb1", vs, true, false, 3, 1, 4, 5))
	assert.Equal(t, Mail{Subject: "[lb1] Virtualserver [2001:db8::1]:tcp:443 - DOWN", Body: "=> Lost quorum 3+1=2 <= 1 <="},
		Quorum("lb1", vs, false, false, 3, 1, 2, 1), "keepalived writes + when losing too")
	assert.Equal(t, "=> Starting with quorum down 1+0=1 <= 0 <=", Quorum("lb1", vs, false, true, 1, 0, 1, 0).Body)

	m, ok := SyncGroup("lb1", "G", StateMaster)
	require.True(t, ok)
	assert.Equal(t, Mail{Subject: "[lb1] VRRP Group G - Entering MASTER state", Body: "=> All VRRP group instances are now in MASTER state <="}, m)
	_, ok = SyncGroup("lb1", "G", StateDeleted)
	assert.False(t, ok, "keepalived mails no deleted group")
	m, ok = Instance("lb1", "VI_1", StateDeleted)
	require.True(t, ok)
	assert.Equal(t, "=> VRRP Deleted at reload <=", m.Body)

	for _, tc := range []struct {
		kind, detail string
		up           bool
		want         string
	}{
		{"TCP_CHECK", "", false, "=> TCP CHECK failed on service <="},
		{"HTTP_GET", "", false, "=> CHECK failed on service : HTTP request failed <="},
		{"SSL_GET", "", true, "=> CHECK succeed on service <="},
		{"SMTP_CHECK", "Bad greeting banner from server [10.0.0.11]:25", false, "=> CHECK failed on service : Bad greeting banner from server [10.0.0.11]:25 <="},
		{"DNS_CHECK", "", true, "=> DNS_CHECK: succeed on service <="},
		{"UDP_CHECK", "", false, "=> UDP CHECK failed on service <="},
		{"PING_CHECK", "", true, "=> ICMP CHECK succeed on service <="},
		{"MISC_CHECK", "timed out", false, "=> MISC CHECK timed out on service <="},
		{"MISC_CHECK", "", true, "=> MISC CHECK succeeded on service <="},
	} {
		got, ok := CheckerBody(tc.kind, tc.up, tc.detail)
		assert.True(t, ok)
		assert.Equal(t, tc.want, got)
	}
	_, ok = CheckerBody("FILE_CHECK", false, "")
	assert.False(t, ok, "keepalived's FILE_CHECK mails nothing")

}

// A mail that comes after Close (a VRRP instance's STOP, told late) is
// dropped, not a panic.
func TestAlertAfterClose(t *testing.T) {
	a := NewAlerter(Server{Addr: closedAddr(t), To: []string{"o@h"}, Timeout: time.Second}, slog.New(slog.DiscardHandler))
	a.Close(time.Second)
	assert.NotPanics(t, func() { a.Alert(Mail{Subject: "late"}) })
	a.Close(time.Second)
}
