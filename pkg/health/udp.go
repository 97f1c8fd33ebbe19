package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultUDPPayload is what UDP_CHECK sends without a payload: keepalived's
// 32 bytes of "keepalived check - " repeated (set_buf in layer4.c).
var DefaultUDPPayload = checkPattern(32)

// DefaultMaxReplyLength is keepalived's max_reply_length.
const DefaultMaxReplyLength = 255

// Errors UDP_CHECK wraps.
var (
	// ErrUnreachable: an ICMP or ICMPv6 destination unreachable (port,
	// host, network, prohibited...) answered the datagram.
	ErrUnreachable = errors.New("destination unreachable")
	// ErrReplyMismatch: a reply that is not require_reply's pattern, or
	// outside min_reply_length..max_reply_length.
	ErrReplyMismatch = errors.New("reply does not match")
)

// UDPCheck is keepalived's UDP_CHECK (check_udp.c): it sends Payload from a
// connected UDP socket and waits Timeout for an answer.
//
//   - An ICMP destination unreachable of any code (port unreachable: the
//     port is closed) is down.
//   - Without RequireReply, silence for Timeout is up, and so is any reply.
//   - With RequireReply, silence is down. A reply is up, unless ReplyData
//     is set: then the reply's length must be in [MinReplyLength,
//     MaxReplyLength] and its first min(len(reply), len(ReplyData)) bytes
//     must equal ReplyData's, except for the bits ReplyMask sets (its "x"
//     nibbles). A reply is read into MaxReplyLength+1 bytes, as keepalived
//     reads it, so a longer one fails the length test.
//
// Other ICMP errors (time exceeded...) count as keepalived counts them: as
// a reply it could not read, which is up unless ReplyData is set.
type UDPCheck struct {
	Addr     netip.AddrPort // connect_ip and connect_port
	Bind     netip.Addr     // bindto; zero lets the kernel choose
	BindPort uint16         // bind_port; zero lets the kernel choose
	Mark     uint32         // SO_MARK: a check through the data path (dataplane.CheckRouter); 0 none
	Timeout  time.Duration  // connect_timeout; zero means DefaultConnectTimeout
	// Payload is sent as the datagram; nil sends DefaultUDPPayload.
	Payload      []byte
	RequireReply bool
	// ReplyData is require_reply's pattern; nil accepts any reply.
	ReplyData []byte
	// ReplyMask has a byte per byte of ReplyData whose set bits are not
	// compared (keepalived's "x" nibbles); nil compares every bit.
	ReplyMask []byte
	// MinReplyLength and MaxReplyLength bound a reply when ReplyData is
	// set. keepalived's defaults are 0 and DefaultMaxReplyLength; a
	// MaxReplyLength of 0 accepts only empty replies.
	MinReplyLength, MaxReplyLength int
}

// Check sends the datagram once and waits for what comes back.
func (c *UDPCheck) Check(ctx context.Context) Result {
	if !c.Addr.IsValid() {
		return down(errors.New("udp check: no address to send to"))
	}
	timeout := connectTimeout(c.Timeout)
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	server := c.Addr.String()
	d := dialer("udp", c.Bind, c.BindPort, c.Mark)
	d.Control = recvErr
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return down(ioError(parent, "udp check: connect "+server, timeout, err))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	defer abortOnDone(ctx, conn)()

	payload := c.Payload
	if payload == nil {
		payload = DefaultUDPPayload
	}
	if _, err := conn.Write(payload); err != nil {
		return down(ioError(parent, "udp check: send to "+server, timeout, err))
	}
	size := 1
	if c.RequireReply {
		size = max(c.MaxReplyLength, 0) + 1
	}
	buf := make([]byte, size)
	n, err := conn.Read(buf)
	switch {
	case err == nil:
		if c.RequireReply && c.ReplyData != nil {
			return c.reply(server, buf[:n])
		}
		return up()
	case isTimeout(err) && parent.Err() == nil:
		if c.RequireReply {
			return down(fmt.Errorf("udp check: no reply from %s: %w after %v", server, ErrTimeout, timeout))
		}
		return up() // keepalived: no news is good news
	case parent.Err() != nil:
		return down(ioError(parent, "udp check: read from "+server, timeout, err))
	}
	// An ICMP error: the socket's error queue says which.
	icmp, unreach := unreachable(conn)
	switch {
	case unreach:
		return down(fmt.Errorf("udp check: read from %s: %w (%s): %w", server, ErrUnreachable, icmp, err))
	case errors.Is(err, unix.ECONNREFUSED):
		return down(fmt.Errorf("udp check: read from %s: %w (port unreachable): %w", server, ErrUnreachable, err))
	case !isICMPError(err):
		return down(fmt.Errorf("udp check: read from %s: %w", server, err))
	case c.RequireReply && c.ReplyData != nil:
		return down(fmt.Errorf("udp check: %s answered with an ICMP error: %w", server, err))
	}
	return up()
}

// reply checks a reply against ReplyData (check_udp_reply in keepalived).
func (c *UDPCheck) reply(server string, got []byte) Result {
	if len(got) < c.MinReplyLength || len(got) > c.MaxReplyLength {
		return down(fmt.Errorf("udp check: reply from %s: %w: %d bytes, want %d to %d",
			server, ErrReplyMismatch, len(got), c.MinReplyLength, c.MaxReplyLength))
	}
	for i := range min(len(got), len(c.ReplyData)) {
		care := byte(0xff)
		if i < len(c.ReplyMask) {
			care = ^c.ReplyMask[i]
		}
		if (got[i]^c.ReplyData[i])&care != 0 {
			return down(fmt.Errorf("udp check: reply from %s: %w at byte %d: got %#02x, want %#02x",
				server, ErrReplyMismatch, i, got[i], c.ReplyData[i]))
		}
	}
	return up()
}

// recvErr asks for ICMP errors on the socket's error queue (IP_RECVERR),
// as keepalived does, so that every destination unreachable is reported,
// not only the "hard" ones.
func recvErr(network, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if network == "udp6" {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_RECVERR, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_RECVERR, 1)
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt RECVERR: %w", serr)
	}
	return nil
}

// isICMPError reports whether err is what a socket says for an ICMP error
// (IP_RECVERR sets these from the ICMP message).
func isICMPError(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EACCES, unix.EPROTO,
		unix.EMSGSIZE, unix.ENOPROTOOPT, unix.EHOSTDOWN, unix.ENONET, unix.EOPNOTSUPP:
		return true
	}
	return false
}

// unreachable reads the socket's error queue and reports whether it holds
// an ICMP or ICMPv6 destination unreachable, and which.
func unreachable(conn net.Conn) (string, bool) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return "", false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return "", false
	}
	var what string
	var found bool
	_ = rc.Read(func(fd uintptr) bool {
		for range 8 { // a few queued errors at most
			oob := make([]byte, 512)
			_, oobn, _, _, err := unix.Recvmsg(int(fd), make([]byte, 64), oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err != nil {
				return true // empty: done
			}
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				continue
			}
			for _, m := range msgs {
				if w, ok := destUnreachable(m); ok {
					what, found = w, true
				}
			}
		}
		return true
	})
	return what, found
}

// destUnreachable decodes a struct sock_extended_err (linux/errqueue.h).
func destUnreachable(m unix.SocketControlMessage) (string, bool) {
	if len(m.Data) < 8 {
		return "", false
	}
	origin, typ, code := m.Data[4], m.Data[5], m.Data[6]
	switch {
	case m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR &&
		origin == unix.SO_EE_ORIGIN_ICMP && typ == 3: // ICMP_DEST_UNREACH
		return icmpUnreachName(code), true
	case m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR &&
		origin == unix.SO_EE_ORIGIN_ICMP6 && typ == 1: // ICMPV6_DEST_UNREACH
		return icmp6UnreachName(code), true
	}
	return "", false
}

func icmpUnreachName(code byte) string {
	names := map[byte]string{0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable",
		3: "port unreachable", 9: "network prohibited", 10: "host prohibited", 13: "communication prohibited"}
	if n, ok := names[code]; ok {
		return "ICMP " + n
	}
	return fmt.Sprintf("ICMP destination unreachable code %d", code)
}

func icmp6UnreachName(code byte) string {
	names := map[byte]string{0: "no route", 1: "administratively prohibited", 3: "address unreachable", 4: "port unreachable"}
	if n, ok := names[code]; ok {
		return "ICMPv6 " + n
	}
	return fmt.Sprintf("ICMPv6 destination unreachable code %d", code)
}

// checkPattern is n bytes of keepalived's check text, as set_buf fills
// the buffers of UDP_CHECK and PING_CHECK.
func checkPattern(n int) []byte {
	const s = "keepalived check - "
	b := make([]byte, n)
	for i := range b {
		b[i] = s[i%len(s)]
	}
	return b
}
