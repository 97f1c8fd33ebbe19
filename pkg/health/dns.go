package health

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"
)

// DNSCheck is keepalived's DNS_CHECK: one recursive query over UDP, up when a
// response with the query's ID arrives within Timeout with RCODE NOERROR.
// Like keepalived it does not look at the answers: an empty NOERROR answer
// (NODATA) is up, NXDOMAIN and SERVFAIL are down. Datagrams that are not a
// response to the query (another ID, QR clear, shorter than a header) are
// ignored and the check keeps waiting.
type DNSCheck struct {
	Addr     netip.AddrPort // connect_ip and connect_port
	Bind     netip.Addr     // bindto; zero lets the kernel choose
	BindPort uint16         // bind_port; zero lets the kernel choose
	Mark     uint32         // SO_MARK: a check through the data path (dataplane.CheckRouter); 0 none
	Timeout  time.Duration  // connect_timeout; zero means DefaultConnectTimeout
	// Type is the query type: A, NS, CNAME, SOA, MX, TXT, AAAA, RRSIG or
	// DNSKEY, any case. Empty is SOA, keepalived's default.
	Type string
	// Name is the name queried. Empty is ".", keepalived's default.
	Name string
}

// DNS query types DNS_CHECK knows, by keepalived's names.
var dnsTypes = map[string]uint16{
	"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "RRSIG": 46, "DNSKEY": 48,
}

// Check sends the query once and waits for its response.
func (c *DNSCheck) Check(ctx context.Context) Result {
	if !c.Addr.IsValid() {
		return down(errors.New("dns check: no address to query"))
	}
	q := dnsQuery{ID: uint16(rand.Uint32()), Name: c.Name, Type: 6}
	if q.Name == "" {
		q.Name = "."
	}
	if c.Type != "" {
		t, ok := dnsTypes[strings.ToUpper(c.Type)]
		if !ok {
			return down(fmt.Errorf("dns check: unknown type %q", c.Type))
		}
		q.Type = t
	}
	msg, err := q.MarshalBinary()
	if err != nil {
		return down(fmt.Errorf("dns check: %w", err))
	}

	timeout := connectTimeout(c.Timeout)
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	server := c.Addr.String()
	conn, err := dialer("udp", c.Bind, c.BindPort, c.Mark).DialContext(ctx, "udp", server)
	if err != nil {
		return down(ioError(parent, "dns check: connect "+server, timeout, err))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	defer abortOnDone(ctx, conn)()

	if _, err := conn.Write(msg); err != nil {
		return down(ioError(parent, "dns check: send query to "+server, timeout, err))
	}
	buf := make([]byte, 1500)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return down(ioError(parent, "dns check: read response from "+server, timeout, err))
		}
		var h dnsHeader
		if h.UnmarshalBinary(buf[:n]) != nil || h.ID != q.ID || !h.Response() {
			continue
		}
		if rc := h.Rcode(); rc != 0 {
			return down(fmt.Errorf("dns check %s %s %s: %w: %s", server, c.typeName(q.Type), q.Name, ErrRcode, rcodeName(rc)))
		}
		return up()
	}
}

func (c *DNSCheck) typeName(t uint16) string {
	for name, v := range dnsTypes {
		if v == t {
			return name
		}
	}
	return fmt.Sprint(t)
}

// dnsHeader is the DNS message header (RFC 1035 section 4.1.1).
type dnsHeader struct {
	ID      uint16
	Flags   uint16
	QDCount uint16
	ANCount uint16
	NSCount uint16
	ARCount uint16
}

const (
	dnsHeaderLen = 12
	dnsFlagQR    = 1 << 15
	dnsFlagRD    = 1 << 8
	dnsClassIN   = 1
)

var errShortHeader = errors.New("dns message shorter than a header")

// UnmarshalBinary reads the header at the start of b.
func (h *dnsHeader) UnmarshalBinary(b []byte) error {
	if len(b) < dnsHeaderLen {
		return errShortHeader
	}
	*h = dnsHeader{
		ID:      binary.BigEndian.Uint16(b[0:]),
		Flags:   binary.BigEndian.Uint16(b[2:]),
		QDCount: binary.BigEndian.Uint16(b[4:]),
		ANCount: binary.BigEndian.Uint16(b[6:]),
		NSCount: binary.BigEndian.Uint16(b[8:]),
		ARCount: binary.BigEndian.Uint16(b[10:]),
	}
	return nil
}

// MarshalBinary appends nothing else: it is the header alone.
func (h dnsHeader) MarshalBinary() ([]byte, error) {
	b := make([]byte, dnsHeaderLen)
	binary.BigEndian.PutUint16(b[0:], h.ID)
	binary.BigEndian.PutUint16(b[2:], h.Flags)
	binary.BigEndian.PutUint16(b[4:], h.QDCount)
	binary.BigEndian.PutUint16(b[6:], h.ANCount)
	binary.BigEndian.PutUint16(b[8:], h.NSCount)
	binary.BigEndian.PutUint16(b[10:], h.ARCount)
	return b, nil
}

// Response reports the QR bit: a response, not a query.
func (h dnsHeader) Response() bool { return h.Flags&dnsFlagQR != 0 }

// Rcode is the response code (RFC 1035 section 4.1.1).
func (h dnsHeader) Rcode() int { return int(h.Flags & 0xf) }

func rcodeName(rc int) string {
	names := [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"}
	if rc < len(names) {
		return names[rc]
	}
	return fmt.Sprintf("RCODE %d", rc)
}

// dnsQuery is the query keepalived sends: a header with RD set and one
// question of class IN (RFC 1035 sections 4.1.1 and 4.1.2).
type dnsQuery struct {
	ID   uint16
	Name string // dotted, with or without the final dot; "." is the root
	Type uint16
}

// MarshalBinary encodes the query. Names with an empty label, a label over
// 63 bytes or an encoding over 255 bytes are refused.
func (q dnsQuery) MarshalBinary() ([]byte, error) {
	b, _ := dnsHeader{ID: q.ID, Flags: dnsFlagRD, QDCount: 1}.MarshalBinary()
	name, err := appendName(nil, q.Name)
	if err != nil {
		return nil, err
	}
	b = append(b, name...)
	b = binary.BigEndian.AppendUint16(b, q.Type)
	b = binary.BigEndian.AppendUint16(b, dnsClassIN)
	return b, nil
}

// appendName appends name in the wire's length-prefixed labels.
func appendName(b []byte, name string) ([]byte, error) {
	start := len(b)
	if name != "." {
		trimmed := strings.TrimSuffix(name, ".")
		if trimmed == "" {
			return nil, fmt.Errorf("dns name %q is empty", name)
		}
		for label := range strings.SplitSeq(trimmed, ".") {
			switch {
			case label == "":
				return nil, fmt.Errorf("dns name %q has an empty label", name)
			case len(label) > 63:
				return nil, fmt.Errorf("dns name %q has a label longer than 63 bytes", name)
			}
			b = append(b, byte(len(label)))
			b = append(b, label...)
		}
	}
	b = append(b, 0)
	if len(b)-start > 255 {
		return nil, fmt.Errorf("dns name %q is longer than 255 bytes", name)
	}
	return b, nil
}
