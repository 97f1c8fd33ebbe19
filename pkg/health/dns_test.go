package health

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dnsServer is a UDP DNS responder on loopback. For each query it sends what
// answer returns, in order, and records the query and where it came from.
type dnsServer struct {
	addr    netip.AddrPort
	mu      sync.Mutex
	queries [][]byte
	from    []netip.AddrPort
}

func startDNS(t *testing.T, answer func(q []byte) [][]byte) *dnsServer {
	t.Helper()
	return startDNSOn(t, netip.MustParseAddr("127.0.0.1"), answer)
}

// startDNSOn is startDNS on the loopback address ip.
func startDNSOn(t *testing.T, ip netip.Addr, answer func(q []byte) [][]byte) *dnsServer {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	require.NoError(t, err)
	s := &dnsServer{addr: addrPort(t, conn.LocalAddr())}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			q := append([]byte(nil), buf[:n]...)
			s.mu.Lock()
			s.queries = append(s.queries, q)
			s.from = append(s.from, from.AddrPort())
			s.mu.Unlock()
			for _, msg := range answer(q) {
				_, _ = conn.WriteToUDP(msg, from)
			}
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return s
}

// lastFrom is the address the last query came from.
func (s *dnsServer) lastFrom(t *testing.T) netip.AddrPort {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotEmpty(t, s.from)
	return s.from[len(s.from)-1]
}

func (s *dnsServer) lastQuery(t *testing.T) []byte {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotEmpty(t, s.queries)
	return s.queries[len(s.queries)-1]
}

// reply is a response to query q: its ID and question, the flags given
// (QR and RA are added), and n A records for 127.0.0.1.
func reply(q []byte, flags uint16, n int) []byte {
	var h dnsHeader
	if h.UnmarshalBinary(q) != nil {
		return nil
	}
	msg, _ := dnsHeader{ID: h.ID, Flags: dnsFlagQR | dnsFlagRD | 1<<7 | flags, QDCount: 1, ANCount: uint16(n)}.MarshalBinary()
	msg = append(msg, q[dnsHeaderLen:]...)
	for range n {
		msg = append(msg, 0xc0, 0x0c) // the question's name
		msg = binary.BigEndian.AppendUint16(msg, 1)
		msg = binary.BigEndian.AppendUint16(msg, dnsClassIN)
		msg = binary.BigEndian.AppendUint32(msg, 60)
		msg = binary.BigEndian.AppendUint16(msg, 4)
		msg = append(msg, 127, 0, 0, 1)
	}
	return msg
}

func answers(flags uint16, n int) func([]byte) [][]byte {
	return func(q []byte) [][]byte { return [][]byte{reply(q, flags, n)} }
}

const (
	rcodeServFail = 2
	rcodeNXDomain = 3
	rcodeRefused  = 5
)

func TestDNSCheckUp(t *testing.T) {
	s := startDNS(t, answers(0, 1))
	r := (&DNSCheck{Addr: s.addr, Type: "a", Name: "www.example.org", Timeout: time.Second}).Check(context.Background())
	assert.True(t, r.Up, "%v", r.Err)

	q := s.lastQuery(t)
	var h dnsHeader
	require.NoError(t, h.UnmarshalBinary(q))
	assert.Equal(t, uint16(dnsFlagRD), h.Flags, "a recursive query")
	assert.Equal(t, dnsHeader{ID: h.ID, Flags: dnsFlagRD, QDCount: 1}, h)
	assert.Equal(t, "\x03www\x07example\x03org\x00\x00\x01\x00\x01", string(q[dnsHeaderLen:]))
}

func TestDNSCheckDefaults(t *testing.T) {
	s := startDNS(t, answers(0, 1))
	r := (&DNSCheck{Addr: s.addr, Timeout: time.Second}).Check(context.Background())
	require.True(t, r.Up, "%v", r.Err)
	assert.Equal(t, "\x00\x00\x06\x00\x01", string(s.lastQuery(t)[dnsHeaderLen:]), "SOA of the root")

	r = (&DNSCheck{Addr: s.addr, Type: "AAAA", Name: "example.org.", Timeout: time.Second}).Check(context.Background())
	require.True(t, r.Up, "%v", r.Err)
	assert.Equal(t, "\x07example\x03org\x00\x00\x1c\x00\x01", string(s.lastQuery(t)[dnsHeaderLen:]))
}

func TestDNSCheckNoData(t *testing.T) {
	// keepalived looks at the RCODE only: NOERROR without answers is up.
	s := startDNS(t, answers(0, 0))
	r := (&DNSCheck{Addr: s.addr, Name: "example.org", Type: "MX", Timeout: time.Second}).Check(context.Background())
	assert.True(t, r.Up, "%v", r.Err)
}

func TestDNSCheckErrorRcodes(t *testing.T) {
	for name, rc := range map[string]uint16{"SERVFAIL": rcodeServFail, "NXDOMAIN": rcodeNXDomain, "REFUSED": rcodeRefused} {
		t.Run(name, func(t *testing.T) {
			s := startDNS(t, answers(rc, 0))
			r := (&DNSCheck{Addr: s.addr, Name: "example.org", Timeout: time.Second}).Check(context.Background())
			assert.False(t, r.Up)
			assert.ErrorIs(t, r.Err, ErrRcode)
			assert.Contains(t, r.Err.Error(), name)
		})
	}
}

func TestDNSCheckIgnoresOtherDatagrams(t *testing.T) {
	s := startDNS(t, func(q []byte) [][]byte {
		wrongID := reply(q, rcodeServFail, 0)
		wrongID[0] ^= 0xff
		notResponse := reply(q, rcodeServFail, 0)
		notResponse[2] &^= 0x80 // QR clear
		return [][]byte{[]byte("short"), wrongID, notResponse, reply(q, 0, 1)}
	})
	r := (&DNSCheck{Addr: s.addr, Name: "example.org", Timeout: time.Second}).Check(context.Background())
	assert.True(t, r.Up, "%v", r.Err)
}

func TestDNSCheckTimeout(t *testing.T) {
	s := startDNS(t, func([]byte) [][]byte { return nil })
	start := time.Now()
	r := (&DNSCheck{Addr: s.addr, Name: "example.org", Timeout: 200 * time.Millisecond}).Check(context.Background())
	took := time.Since(start)
	assert.False(t, r.Up)
	assert.ErrorIs(t, r.Err, ErrTimeout)
	assert.GreaterOrEqual(t, took, 200*time.Millisecond)
	assert.Less(t, took, 2*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	r = (&DNSCheck{Addr: s.addr, Timeout: 5 * time.Second}).Check(ctx)
	assert.ErrorIs(t, r.Err, context.Canceled)
}

func TestDNSCheckRefused(t *testing.T) {
	// Nothing listens: loopback answers with ICMP port unreachable.
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	addr := addrPort(t, conn.LocalAddr())
	require.NoError(t, conn.Close())
	r := (&DNSCheck{Addr: addr, Timeout: time.Second}).Check(context.Background())
	assert.False(t, r.Up)
	assert.NotErrorIs(t, r.Err, ErrTimeout)
}

func TestDNSCheckBindTo(t *testing.T) {
	src := loopback2(t)
	s := startDNS(t, answers(0, 1))
	r := (&DNSCheck{Addr: s.addr, Bind: src, BindPort: 0, Timeout: time.Second}).Check(context.Background())
	assert.True(t, r.Up, "%v", r.Err)
	assert.Equal(t, src, s.lastFrom(t).Addr().Unmap())
}

func TestDNSCheckBadConfig(t *testing.T) {
	s := startDNS(t, answers(0, 1))
	for _, c := range []DNSCheck{
		{Addr: s.addr, Type: "PTR"},
		{Addr: s.addr, Name: "a..b"},
		{Addr: s.addr, Name: ".a"},
		{Addr: s.addr, Name: string(make([]byte, 64)) + ".org"},
		{},
	} {
		r := c.Check(context.Background())
		assert.False(t, r.Up, "%+v", c)
		assert.Error(t, r.Err)
	}
}

func TestDNSQueryMarshal(t *testing.T) {
	b, err := dnsQuery{ID: 0x1234, Name: "a.bc", Type: 1}.MarshalBinary()
	require.NoError(t, err)
	assert.Equal(t, "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x02bc\x00\x00\x01\x00\x01", string(b))

	long := ""
	for range 5 {
		long += string(make([]byte, 60)) + "."
	}
	_, err = dnsQuery{Name: long}.MarshalBinary()
	assert.ErrorContains(t, err, "255")
}
