package daemon

import (
	"log/slog"
	"net"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/smtp"
)

// MailGrace is how long the smtp_alert mails still queued when the daemon
// stops (the instances' "Stopping" among them) are given to go out.
const MailGrace = 5 * time.Second

// mailer is where the director's and the VRRP instances' smtp_alert mails
// go: one smtp.Alerter for the running configuration's mail server, made
// again when a reload changes the server or its settings, and none while
// the configuration sends no mail. Alert never waits on the mail server.
type mailer struct {
	log *slog.Logger

	mu  sync.Mutex
	cur *smtp.Alerter // nil: no mail
	srv smtp.Server   // cur's
}

// Alert queues m for the running configuration's mail server, or drops it
// when there is none.
func (m *mailer) Alert(mail smtp.Mail) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur != nil {
		m.cur.Alert(mail) // queues, or drops when full: never waits
	}
}

// load makes cfg's mail settings the running ones. An Alerter replaced
// sends what it holds in the background: a reload does not wait for it.
func (m *mailer) load(cfg *config.Config) {
	if m == nil {
		return
	}
	srv, on := mailServer(cfg)
	m.mu.Lock()
	if on && m.cur != nil && reflect.DeepEqual(srv, m.srv) {
		m.mu.Unlock()
		return
	}
	old := m.cur
	m.cur = nil
	if on {
		m.cur, m.srv = smtp.NewAlerter(srv, m.log), srv
		m.log.Info("smtp alerts", "smtp_server", srv.Addr, "to", srv.To)
	}
	m.mu.Unlock()
	if old != nil {
		go old.Close(MailGrace)
	}
}

// close sends what is queued, for at most grace, and stops.
func (m *mailer) close(grace time.Duration) {
	m.mu.Lock()
	a := m.cur
	m.cur = nil
	m.mu.Unlock()
	if a != nil {
		a.Close(grace)
	}
}

// mailServer is cfg's mail server, and whether cfg sends mail at all:
// keepalived mails only with a smtp_server and a notification_email
// (smtp_alert), and only a block whose smtp_alert is on does.
func mailServer(cfg *config.Config) (smtp.Server, bool) {
	g := &cfg.Global
	srv := smtp.Server{
		Addr:     net.JoinHostPort(g.SMTPServer, strconv.Itoa(int(g.SMTPPort))),
		HeloName: g.SMTPHeloName,
		From:     g.NotificationEmailFrom,
		To:       g.NotificationEmail,
		Timeout:  g.SMTPConnectTimeout,
	}
	if g.SMTPServer == "" || len(g.NotificationEmail) == 0 {
		return srv, false
	}
	for _, in := range cfg.Instances {
		if in.SMTPAlert {
			return srv, true
		}
	}
	for _, sg := range cfg.SyncGroups {
		if sg.SMTPAlert {
			return srv, true
		}
	}
	for _, vs := range cfg.VirtualServers {
		if vs.SMTPAlert {
			return srv, true
		}
		for _, rs := range vs.Reals {
			if rs.SMTPAlert {
				return srv, true
			}
		}
	}
	return srv, false
}
