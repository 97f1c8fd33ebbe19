package daemon

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

// mailSink is a mail server that takes every mail as keepalived expects
// (220, 250 to HELO, MAIL and RCPT, 354, 250, 221) and records each
// mail's DATA.
type mailSink struct {
	ln   net.Listener
	mu   sync.Mutex
	data []string
	wg   sync.WaitGroup
}

func newMailSink(t *testing.T, ln net.Listener) *mailSink {
	s := &mailSink{ln: ln}
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

func (s *mailSink) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	say := func(l string) { _, _ = io.WriteString(c, l+"\r\n") }
	say("220 sink ESMTP")
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, _, _ := strings.Cut(strings.TrimRight(l, "\r\n"), " ")
		cmd, _, _ = strings.Cut(cmd, ":")
		switch cmd {
		case "DATA":
			say("354 go ahead")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(l)
			}
			s.mu.Lock()
			s.data = append(s.data, data.String())
			s.mu.Unlock()
			say("250 queued")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

// mails are the "Subject | body" of the mails received so far.
func (s *mailSink) mails() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, d := range s.data {
		head, body, _ := strings.Cut(d, "\r\n\r\n")
		subject := ""
		for _, h := range strings.Split(head, "\r\n") {
			if v, ok := strings.CutPrefix(h, "Subject: "); ok {
				subject = v
			}
		}
		out = append(out, subject+" | "+strings.TrimSpace(body))
	}
	return out
}

// waitMail waits until the mail "subject | body" has come.
func (s *mailSink) waitMail(t *testing.T, want string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, m := range s.mails() {
			if m == want {
				return true
			}
		}
		return false
	}, 15*time.Second, 50*time.Millisecond, "mail %q never came; got %q", want, s.mails())
}

const mailConfig = `
global_defs {
    router_id lb-mail
    notification_email {
        ops@example.org
    }
    notification_email_from xlb@example.org
    smtp_server 127.0.0.1 %d
    smtp_connect_timeout 5
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 53
    priority 100
    advert_int 1
    %s
    virtual_ipaddress {
        10.77.1.100/32
    }
}
virtual_server 10.77.1.100 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    %s
    real_server 10.77.0.11 80 {
        %s
        TCP_CHECK {
            connect_port 81
            connect_timeout 1
            retry 0
            delay_loop 1
            warmup 0
        }
    }
}
`

const (
	mailDown     = "[lb-mail] Realserver [10.77.0.11]:tcp:80 of virtual server [10.77.1.100]:tcp:80 - DOWN | => TCP CHECK failed on service <="
	mailUp       = "[lb-mail] Realserver [10.77.0.11]:tcp:80 of virtual server [10.77.1.100]:tcp:80 - UP | => TCP CHECK succeed on service <="
	mailBackup   = "[lb-mail] VRRP Instance VI_1 - Entering BACKUP state | => VRRP Instance is no longer owning VRRP VIPs <="
	mailMaster   = "[lb-mail] VRRP Instance VI_1 - Entering MASTER state | => VRRP Instance is now owning VRRP VIPs <="
	mailStopping = "[lb-mail] VRRP Instance VI_1 - Stopping | => VRRP Instance stopping <="
	mailStartUp  = "[lb-mail] Virtualserver [10.77.1.100]:tcp:80 - UP | => Starting with quorum up 1+0=1 <= 1 <="
	mailLost     = "[lb-mail] Virtualserver [10.77.1.100]:tcp:80 - DOWN | => Lost quorum 1+0=1 <= 0 <="
	mailGained   = "[lb-mail] Virtualserver [10.77.1.100]:tcp:80 - UP | => Gained quorum 1+0=1 <= 1 <="
)

// smtp_alert in a running director: a real whose TCP_CHECK fails against
// a closed port, and a VRRP instance alone on its link that becomes
// MASTER, mail keepalived's words to the smtp_server (a mail server on
// the director's loopback); the instance mails "Stopping" as the director
// stops. With smtp_alert off on the real and the instance, only the
// virtual server's quorum, on, is mailed; a reload that turns them on
// restarts nothing (the instance stays MASTER, the real's check goes on)
// and the next changes are mailed.
func TestSMTPAlerts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 1, Native: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	ln, err := topo.Director.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sink := newMailSink(t, ln)
	port := ln.Addr().(*net.TCPAddr).Port
	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(instance, vs, real string) {
		require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(mailConfig, port, instance, vs, real)), 0o644))
	}
	realDown := func(d *proc) bool {
		st := d.status(t)
		return len(st.Services) == 1 && len(st.Services[0].Reals) == 1 && !st.Services[0].Reals[0].Healthy
	}

	// On: the instance by its own smtp_alert, the real by default.
	write("smtp_alert", "", "")
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath})
	sink.waitMail(t, mailDown)
	sink.waitMail(t, mailBackup)
	sink.waitMail(t, mailMaster)
	stopDaemon(t, d)
	sink.waitMail(t, mailStopping)
	assert.ElementsMatch(t, []string{mailDown, mailBackup, mailMaster, mailStopping}, sink.mails(),
		"one mail per change; the virtual server's quorum mails are off by default")

	// Off on the real and the instance: their changes mail nothing,
	// while the virtual server's quorum, on, mails.
	before := len(sink.mails())
	since := func() []string { return sink.mails()[before:] }
	write("smtp_alert off", "smtp_alert", "smtp_alert off")
	d = startDaemon(t, topo.Director, Options{ConfigFile: cfgPath})
	require.Eventually(t, func() bool { return realDown(d) && d.vrrpState(t) == "MASTER" }, 15*time.Second, 50*time.Millisecond)
	sink.waitMail(t, mailLost)
	time.Sleep(time.Second)
	assert.Equal(t, []string{mailStartUp, mailLost}, since(), "smtp_alert off: no mail of the real or the instance")

	// A reload turns them on: no restart, so nothing to mail yet.
	before = len(sink.mails())
	write("smtp_alert", "smtp_alert", "smtp_alert on")
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(d.logs(), `msg=reloaded`) }, 10*time.Second, 50*time.Millisecond)
	time.Sleep(time.Second)
	assert.Equal(t, "MASTER", d.vrrpState(t), "smtp_alert is no reason to restart the instance")
	assert.Empty(t, since(), "nothing changed state")

	// The real's port opens: its check, kept across the reload, passes
	// and mails; then the instance stops and mails.
	srv, err := topo.Reals[0].Listen("tcp", "10.77.0.11:81")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	sink.waitMail(t, mailUp)
	sink.waitMail(t, mailGained)
	stopDaemon(t, d)
	sink.waitMail(t, mailStopping)
	assert.Equal(t, []string{mailUp, mailGained, mailStopping}, since())
}
