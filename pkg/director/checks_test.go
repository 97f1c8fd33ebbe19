package director

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/smtp"
)

// smtpOK is an SMTP server on loopback that greets with 220 while healthy
// and with 554 otherwise.
func smtpOK(t *testing.T, healthy *atomic.Bool) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				if !healthy.Load() {
					_, _ = io.WriteString(c, "554 out of service\r\n")
					return
				}
				_, _ = io.WriteString(c, "220 mx ESMTP\r\n")
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(l, "QUIT") {
						_, _ = io.WriteString(c, "221 bye\r\n")
						return
					}
					_, _ = io.WriteString(c, "250 mx\r\n")
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// udpOK answers each datagram with *answer, or not at all when it is "".
func udpOK(t *testing.T, answer *atomic.Value) int {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if a := answer.Load().(string); a != "" {
				_, _ = conn.WriteToUDP([]byte(a), from)
			}
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).Port
}

// TestNewCheckersDriveThePool loads a configuration whose reals are checked
// by SMTP_CHECK, UDP_CHECK, FILE_CHECK and HTTP_GET with a regex, against
// real servers and a real file, and watches what the data plane is given:
// each real leaves the pool when its server or file says so and rejoins
// when it recovers; a weighted FILE_CHECK moves its real's weight.
func TestNewCheckersDriveThePool(t *testing.T) {
	var smtpHealthy atomic.Bool
	smtpHealthy.Store(true)
	smtpPort := smtpOK(t, &smtpHealthy)
	var udpAnswer atomic.Value
	udpAnswer.Store("OK")
	udpPort := udpOK(t, &udpAnswer)
	var page atomic.Value
	page.Store("state: ready")
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, page.Load().(string))
	}))
	t.Cleanup(web.Close)
	webPort := web.Listener.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	down, extra := filepath.Join(dir, "down"), filepath.Join(dir, "extra")
	write := func(path, v string) {
		t.Helper()
		require.NoError(t, os.WriteFile(path, []byte(v+"\n"), 0o644))
	}
	write(down, "0")

	timing := "connect_timeout 1\n retry 1\n delay_before_retry 0.05\n delay_loop 0.1\n warmup 0\n"
	cfg := parse(t, fmt.Sprintf(`
track_file down {
    file %s
    weight 0
}
track_file extra {
    file %s
}
virtual_server 10.0.0.100 25 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.11 25 {
        SMTP_CHECK { connect_ip 127.0.0.1
 connect_port %d
 %s }
    }
    real_server 10.0.0.12 25 {
        UDP_CHECK { connect_ip 127.0.0.1
 connect_port %d
 require_reply 4f 4b
 %s }
    }
    real_server 10.0.0.13 25 {
        weight 5
        FILE_CHECK { track_file down }
        FILE_CHECK {
            track_file extra
            weight 2
        }
    }
    real_server 10.0.0.14 25 {
        HTTP_GET { connect_ip 127.0.0.1
 connect_port %d
 %s
            url {
                path /
                regex "state: (ready|busy)"
            }
        }
    }
}
`, down, extra, smtpPort, timing, udpPort, timing, webPort, timing))

	dp := &fakeDataplane{}
	d := New(t.Context(), Options{Dataplane: dp, Checks: HealthChecks(slog.New(slog.DiscardHandler))})
	require.NoError(t, d.Load(cfg))
	all := map[string]int32{"10.0.0.11:25": 1, "10.0.0.12:25": 1, "10.0.0.13:25": 5, "10.0.0.14:25": 1}
	pool := func() map[string]int32 { return weights(dp.last()[0]) }
	settle := func(want map[string]int32, msg string) {
		t.Helper()
		require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, pool()) }, 5*time.Second, 10*time.Millisecond,
			"%s: the pool is %v, want %v", msg, pool(), want)
	}
	settle(all, "all reals pass")
	without := func(real string) map[string]int32 {
		m := map[string]int32{}
		for k, v := range all {
			if k != real {
				m[k] = v
			}
		}
		return m
	}

	smtpHealthy.Store(false)
	settle(without("10.0.0.11:25"), "SMTP server answers 554")
	smtpHealthy.Store(true)
	settle(all, "SMTP server back")

	udpAnswer.Store("NO")
	settle(without("10.0.0.12:25"), "UDP server answers wrong")
	udpAnswer.Store("OK")
	settle(all, "UDP server answers right")

	write(down, "1")
	settle(without("10.0.0.13:25"), "the down file says 1")
	write(down, "0")
	settle(all, "the down file says 0")
	write(extra, "3")
	weighted := without("")
	weighted["10.0.0.13:25"] = 5 + 3*2
	settle(weighted, "the weighted file adds its value times 2 to weight 5")
	write(extra, "0")
	settle(all, "back to the configured weight")

	page.Store("state: maintenance")
	settle(without("10.0.0.14:25"), "the page stops matching its regex")
	page.Store("state: busy")
	settle(all, "the page matches again")
}

// TestCheckerAlerts watches the smtp_alert mails a real's TCP_CHECK sends
// as its server goes away and comes back: keepalived's subject and body,
// one mail per checker change.
func TestCheckerAlerts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	text := fmt.Sprintf(`
global_defs {
    router_id lb1
}
virtual_server 10.0.0.100 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.11 80 {
        TCP_CHECK {
            connect_ip 127.0.0.1
            connect_port %d
            connect_timeout 1
            retry 0
            delay_loop 0.05
            warmup 0
        }
    }
    real_server 10.0.0.12 80 {
    }
}
`, port)
	cfg := parse(t, text)
	mails := make(chan smtp.Mail, 10)
	alerts := &CheckAlerts{Send: func(m smtp.Mail) { mails <- m }}
	d := New(t.Context(), Options{Dataplane: &fakeDataplane{}, Checks: HealthChecksAlerting(slog.New(slog.DiscardHandler), alerts), Alerts: alerts})
	require.NoError(t, d.Load(cfg))
	next := func() smtp.Mail {
		t.Helper()
		select {
		case m := <-mails:
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no mail")
			return smtp.Mail{}
		}
	}
	select {
	case m := <-mails:
		t.Fatalf("a checker that passes from the start mails nothing, got %+v", m)
	case <-time.After(200 * time.Millisecond):
	}

	require.NoError(t, ln.Close())
	assert.Equal(t, smtp.Mail{Subject: "[lb1] Realserver [10.0.0.11]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN",
		Body: "=> TCP CHECK failed on service <="}, next())

	ln2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err)
	defer ln2.Close()
	assert.Equal(t, smtp.Mail{Subject: "[lb1] Realserver [10.0.0.11]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - UP",
		Body: "=> TCP CHECK succeed on service <="}, next())

	// A reload that turns the real's smtp_alert off keeps its checks
	// running (as keepalived's does), and its next change mails nothing.
	require.NoError(t, d.Load(parse(t, strings.Replace(text, "real_server 10.0.0.11 80 {", "real_server 10.0.0.11 80 {\n        smtp_alert off", 1))))
	require.NoError(t, ln2.Close())
	require.Eventually(t, func() bool {
		st, err := d.Status()
		require.NoError(t, err)
		return !st.Services[0].Reals[0].Healthy
	}, 5*time.Second, 10*time.Millisecond, "the real goes down")
	select {
	case m := <-mails:
		t.Fatalf("smtp_alert off: no mail, got %+v", m)
	case <-time.After(200 * time.Millisecond):
	}
}
