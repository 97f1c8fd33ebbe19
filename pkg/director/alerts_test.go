package director

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/smtp"
)

// mailbox collects what a CheckAlerts sends.
type mailbox struct {
	mu    sync.Mutex
	mails []string // "subject | body"
}

func (b *mailbox) send(m smtp.Mail) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mails = append(b.mails, m.Subject+" | "+m.Body)
}

// take waits until n mails came (the mails of a Load are sent after it
// returns), returns them and forgets them.
func (b *mailbox) take(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		out = b.mails
		return len(out) >= n
	}, 5*time.Second, 5*time.Millisecond, "%d mails, got %q", n, out)
	b.mu.Lock()
	defer b.mu.Unlock()
	out, b.mails = b.mails, nil
	return out
}

// quorumConfig is a virtual server with a quorum; vsAlert and rsAlert are
// lines for it and its first real, extra more lines in it.
func quorumConfig(vsAlert, rsAlert, extra string) string {
	return fmt.Sprintf(`
global_defs {
    router_id lb1
}
virtual_server 10.0.0.100 80 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    quorum 3
    hysteresis 1
    %s
    real_server 10.0.0.11 80 {
        weight 2
        %s
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.0.0.12 80 {
        weight 2
        TCP_CHECK { connect_timeout 1 }
    }
%s}
`, vsAlert, rsAlert, extra)
}

// The quorum mails of ipwrapper.c's do_vs_notifies and the mails about the
// real servers a reload takes out (clear_service_rs), in keepalived's
// words and sums.
func TestQuorumAndRemovalMails(t *testing.T) {
	d, _, c, _ := newTest(t)
	box := &mailbox{}
	d.opts.Alerts = &CheckAlerts{Send: box.send}
	third := "    real_server 10.0.0.13 80 {\n        weight 1\n        TCP_CHECK { connect_timeout 1 }\n    }\n"
	require.NoError(t, d.Load(parse(t, quorumConfig("smtp_alert", "", third))))
	// A new virtual server counts its quorum from down, as keepalived
	// starts one: 5 >= 3+1.
	assert.Equal(t, []string{"[lb1] Virtualserver [10.0.0.100]:tcp:80 - UP | => Starting with quorum up 3+1=4 <= 5 <="}, box.take(t, 1))

	c.report(t, "10.0.0.11:80", Health{Up: false})
	c.report(t, "10.0.0.13:80", Health{Up: false}) // 2: not below 3-1
	c.report(t, "10.0.0.12:80", Health{Up: false})
	assert.Equal(t, []string{"[lb1] Virtualserver [10.0.0.100]:tcp:80 - DOWN | => Lost quorum 3+1=2 <= 0 <="}, box.take(t, 1),
		"keepalived writes + for the threshold it lost against, quorum-hysteresis")
	c.report(t, "10.0.0.11:80", Health{Up: true})
	c.report(t, "10.0.0.13:80", Health{Up: true}) // 3: not yet 3+1
	c.report(t, "10.0.0.12:80", Health{Up: true})
	assert.Equal(t, []string{"[lb1] Virtualserver [10.0.0.100]:tcp:80 - UP | => Gained quorum 3+1=4 <= 5 <="}, box.take(t, 1))

	// A reload without 10.0.0.13, which is up: keepalived's "Removing".
	require.NoError(t, d.Load(parse(t, quorumConfig("smtp_alert", "", ""))))
	assert.Equal(t, []string{"[lb1] Realserver [10.0.0.13]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN | => Removing <="}, box.take(t, 1))

	// smtp_alert off on the virtual server: no quorum mail; on the real:
	// no mail when a reload takes it out.
	require.NoError(t, d.Load(parse(t, quorumConfig("smtp_alert off", "smtp_alert off", ""))))
	c.report(t, "10.0.0.12:80", Health{Up: false})
	c.report(t, "10.0.0.11:80", Health{Up: false})
	c.report(t, "10.0.0.11:80", Health{Up: true})
	c.report(t, "10.0.0.12:80", Health{Up: true})
	require.NoError(t, d.Load(parse(t, quorumConfig("smtp_alert off", "smtp_alert off", "")+
		"virtual_server 10.0.0.200 80 {\n lb_kind DR\n protocol TCP\n real_server 10.0.0.21 80 {\n }\n}\n")))
	require.NoError(t, d.Load(parse(t, "virtual_server 10.0.0.200 80 {\n lb_kind DR\n protocol TCP\n real_server 10.0.0.21 80 {\n }\n}\n")))
	assert.Equal(t, []string{"[" + smtp.RouterID("") + "] Realserver [10.0.0.12]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN | => Removing <="},
		box.take(t, 1), "the virtual server goes: its real with smtp_alert on is mailed, with the new configuration's router_id (the host name)")
	time.Sleep(50 * time.Millisecond)
	assert.Empty(t, box.take(t, 0))
}

// A virtual server a reload removes while it has its quorum loses it, as
// keepalived's update_vs_notifies says.
func TestRemovedVirtualServerLosesQuorum(t *testing.T) {
	d, _, _, _ := newTest(t)
	box := &mailbox{}
	d.opts.Alerts = &CheckAlerts{Send: box.send}
	require.NoError(t, d.Load(parse(t, quorumConfig("smtp_alert", "smtp_alert off", ""))))
	assert.Equal(t, []string{"[lb1] Virtualserver [10.0.0.100]:tcp:80 - UP | => Starting with quorum up 3+1=4 <= 4 <="}, box.take(t, 1))
	require.NoError(t, d.Load(parse(t, "global_defs {\n router_id lb1\n}\n")))
	assert.Equal(t, []string{
		"[lb1] Realserver [10.0.0.12]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN | => Removing <=",
		"[lb1] Virtualserver [10.0.0.100]:tcp:80 - DOWN | => Lost quorum 3+1=2 <= 0 <=",
	}, box.take(t, 2))
}

// keepalived names a group's and a firewall mark's virtual server its own
// way in the mails (format_vs), and a fwmark real's protocol "none".
func TestMailNames(t *testing.T) {
	cfg := parse(t, `
virtual_server_group web {
    10.0.0.1 80
}
virtual_server group web {
    lb_kind DR
    protocol TCP
    real_server 10.0.0.11 80 {
    }
}
virtual_server fwmark 7 {
    lb_kind DR
    real_server 10.0.0.12 80 {
    }
}
`)
	g, fw := &cfg.VirtualServers[0], &cfg.VirtualServers[1]
	assert.Equal(t, "[web]:0", vsMailName(g))
	assert.Equal(t, "[10.0.0.11]:tcp:80", rsMailName(g, &g.Reals[0]))
	assert.Equal(t, "FWM 7", vsMailName(fw))
	assert.Equal(t, "[10.0.0.12]:none:80", rsMailName(fw, &fw.Reals[0]))
}
