package smtp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strings"
	"time"
)

// DefaultTimeout is keepalived's smtp_connect_timeout.
const DefaultTimeout = 30 * time.Second

// ErrReply: the mail server answered a command with another code than the
// one keepalived expects (220, 250, 354, 221).
var ErrReply = errors.New("unexpected SMTP reply")

// Server is where alerts go: global_defs' smtp_server, smtp_helo_name,
// smtp_connect_timeout, notification_email_from and notification_email.
type Server struct {
	Addr string // host:port
	// HeloName is said in HELO; "" says the local host name, keepalived's
	// default.
	HeloName string
	// From is the sender; "" is user@hostname, keepalived's default.
	From string
	To   []string
	// Timeout bounds the connect and each reply, as keepalived's
	// smtp_connection_to does; zero is DefaultTimeout.
	Timeout time.Duration
}

// Mail is one alert.
type Mail struct {
	Subject string
	Body    string
}

// keepalived's buffer sizes: longer subjects and bodies are cut.
const (
	maxSubject = 256 - 1
	maxBody    = 512 - 1
	maxReply   = 1024
)

// Send delivers m, dated now, as keepalived's smtp_alert does. A server
// that answers a command wrongly is still sent QUIT, as keepalived sends
// it, and Send reports the wrong answer.
func (s *Server) Send(ctx context.Context, m Mail, now time.Time) error {
	if len(s.To) == 0 {
		return errors.New("smtp alert: no notification_email to send to")
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("smtp alert: connect %s: %w", s.Addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c := &session{conn: conn, r: bufio.NewReader(conn), timeout: timeout, server: s.Addr}

	helo, from := s.HeloName, s.From
	if helo == "" {
		helo = localName()
	}
	if from == "" {
		from = defaultFrom()
	}
	subject, body := cut(m.Subject, maxSubject), cut(m.Body, maxBody)
	data := fmt.Sprintf("Date: %s\r\nFrom: %s\r\nSubject: %s\r\nX-Mailer: Keepalived\r\nTo: %s\r\n\r\n%s\r\n",
		now.Format("Mon, 02 Jan 2006 15:04:05 -0700"), from, subject, strings.Join(s.To, ", "), body)

	steps := []struct {
		send string
		code int
		what string
	}{
		{"", 220, "(E)SMTP"},
		{"HELO " + helo + "\r\n", 250, "HELO"},
		{"MAIL FROM:<" + from + ">\r\n", 250, "MAIL"},
	}
	for _, to := range s.To {
		steps = append(steps, struct {
			send string
			code int
			what string
		}{"RCPT TO:<" + to + ">\r\n", 250, "RCPT"})
	}
	steps = append(steps, []struct {
		send string
		code int
		what string
	}{
		{"DATA\r\n", 354, "DATA"},
		{dotStuff(data) + "\r\n.\r\n", 250, "BODY"},
	}...)
	for _, st := range steps {
		if st.send != "" {
			if err := c.send(st.send); err != nil {
				return err
			}
		}
		code, err := c.reply()
		if err != nil {
			return err
		}
		if code != st.code {
			_ = c.quit()
			return fmt.Errorf("smtp alert: %s cmd on %s: %w %d, want %d", st.what, s.Addr, ErrReply, code, st.code)
		}
	}
	return c.quit()
}

type session struct {
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
	server  string
}

func (c *session) send(s string) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	if _, err := io.WriteString(c.conn, s); err != nil {
		return fmt.Errorf("smtp alert: send to %s: %w", c.server, err)
	}
	return nil
}

// reply reads a reply, multi-line ones included, and returns the code of
// its last line, as keepalived's smtp_read_thread does.
func (c *session) reply() (int, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	total := 0
	for {
		l, err := c.r.ReadString('\n')
		total += len(l)
		if err != nil {
			return 0, fmt.Errorf("smtp alert: read from %s: %w", c.server, err)
		}
		if total >= maxReply {
			return 0, fmt.Errorf("smtp alert: reply from %s overflows keepalived's buffer", c.server)
		}
		if len(l) > 3 && l[3] == '-' {
			continue
		}
		if len(l) < 3 {
			return 0, fmt.Errorf("smtp alert: short reply %q from %s", l, c.server)
		}
		code := 0
		for _, d := range l[:3] {
			if d < '0' || d > '9' {
				return 0, fmt.Errorf("smtp alert: reply %q from %s has no code", strings.TrimSpace(l), c.server)
			}
			code = code*10 + int(d-'0')
		}
		return code, nil
	}
}

func (c *session) quit() error {
	if err := c.send("QUIT\r\n"); err != nil {
		return err
	}
	code, err := c.reply()
	if err != nil {
		return err
	}
	if code != 221 {
		return fmt.Errorf("smtp alert: QUIT cmd on %s: %w %d, want 221", c.server, ErrReply, code)
	}
	return nil
}

// dotStuff doubles a dot that starts a line, so that the body cannot end
// the DATA early. (keepalived sends its bodies as they are; none of them
// has such a line.)
func dotStuff(s string) string {
	s = strings.ReplaceAll(s, "\r\n.", "\r\n..")
	if strings.HasPrefix(s, ".") {
		s = "." + s
	}
	return s
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// localName is keepalived's local_name: the host name.
func localName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "[unknown]"
}

// defaultFrom is keepalived's default notification_email_from:
// user@hostname.
func defaultFrom() string {
	name := "root"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return name + "@" + localName()
}
