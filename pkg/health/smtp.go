package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// DefaultHeloName is the name SMTP_CHECK says HELO with unless given one
// (keepalived's SMTP_DEFAULT_HELO).
const DefaultHeloName = "smtpchecker.keepalived.org"

// smtpLineMax is keepalived's SMTP_BUFF_MAX: a line longer than this is
// read in pieces, and only its last piece is looked at.
const smtpLineMax = 512

// ErrSMTPReply: an SMTP server answered with a code other than the one
// SMTP_CHECK expects (220 for the banner, 250 for HELO).
var ErrSMTPReply = errors.New("unexpected SMTP reply")

// SMTPCheck is keepalived's SMTP_CHECK, one connection of it (keepalived
// makes each host block a checker of its own): connect, read the banner,
// which must be 220, send "HELO HeloName", whose answer must be 250, send
// QUIT and read one more line, whatever it says.
//
// As in keepalived (check_smtp.c), a reply is the first line received, and
// its code must be exactly three digits followed by a space or the end of
// the line: a multi-line reply ("220-...") fails. (keepalived leaves the
// line's CR on, so it also fails a bare "220\r\n"; xlb takes the CR as the
// end of the line.) Timeout bounds the connect and each read and write
// separately, as connect_timeout does in keepalived.
type SMTPCheck struct {
	Addr     netip.AddrPort // connect_ip and connect_port
	Bind     netip.Addr     // bindto; zero lets the kernel choose
	BindPort uint16         // bind_port; zero lets the kernel choose
	Mark     uint32         // SO_MARK: a check through the data path (dataplane.CheckRouter); 0 none
	Timeout  time.Duration  // connect_timeout; zero means DefaultConnectTimeout
	HeloName string         // helo_name; "" means DefaultHeloName
}

// Check holds one SMTP conversation.
func (c *SMTPCheck) Check(ctx context.Context) Result {
	if !c.Addr.IsValid() {
		return down(errors.New("smtp check: no address to connect to"))
	}
	timeout := connectTimeout(c.Timeout)
	d := dialer("tcp", c.Bind, c.BindPort, c.Mark)
	d.Timeout = timeout
	server := c.Addr.String()
	conn, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return down(ioError(ctx, "smtp check: connect "+server, timeout, err))
	}
	defer conn.Close()
	defer abortOnDone(ctx, conn)()

	helo := c.HeloName
	if helo == "" {
		helo = DefaultHeloName
	}
	s := &smtpSession{ctx: ctx, conn: conn, r: bufio.NewReaderSize(conn, smtpLineMax), timeout: timeout, server: server}
	if err := s.expect("banner", 220); err != nil {
		return down(err)
	}
	if err := s.send("HELO " + helo + "\r\n"); err != nil {
		return down(err)
	}
	if err := s.expect("HELO response", 250); err != nil {
		return down(err)
	}
	if err := s.send("QUIT\r\n"); err != nil {
		return down(err)
	}
	// keepalived waits for a line after QUIT, and takes any.
	if _, err := s.line("QUIT response"); err != nil {
		return down(err)
	}
	return up()
}

type smtpSession struct {
	ctx     context.Context
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
	server  string
}

// line reads one line, without its end.
func (s *smtpSession) line(what string) ([]byte, error) {
	_ = s.conn.SetReadDeadline(time.Now().Add(s.timeout))
	for {
		l, err := s.r.ReadSlice('\n')
		switch {
		case err == nil:
			l = l[:len(l)-1]
			if n := len(l); n > 0 && l[n-1] == '\r' {
				l = l[:n-1]
			}
			return l, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue // keepalived wraps its buffer and reads on
		case errors.Is(err, io.EOF):
			err = io.ErrUnexpectedEOF
		}
		return nil, ioError(s.ctx, "smtp check: read "+what+" from "+s.server, s.timeout, err)
	}
}

// expect reads a reply and checks its code.
func (s *smtpSession) expect(what string, code int) error {
	l, err := s.line(what)
	if err != nil {
		return err
	}
	if got, ok := smtpCode(l); !ok || got != code {
		return fmt.Errorf("smtp check: %s from %s: %w %q, want %d", what, s.server, ErrSMTPReply, truncate(string(l), 64), code)
	}
	return nil
}

func (s *smtpSession) send(line string) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := io.WriteString(s.conn, line); err != nil {
		return ioError(s.ctx, "smtp check: send to "+s.server, s.timeout, err)
	}
	return nil
}

// smtpCode reads the code of a reply line as keepalived's
// smtp_get_status does: three digits, then a space or nothing.
func smtpCode(l []byte) (int, bool) {
	if len(l) < 3 || (len(l) > 3 && l[3] != ' ') {
		return 0, false
	}
	n := 0
	for _, c := range l[:3] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
