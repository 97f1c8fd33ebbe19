package ipvs

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// testdata/ip_vs_conn is the kernel's format: the first four lines as
// Linux 6.1 wrote them in TestTrafficPersistence (two connections and the
// persistence template that controls them), then by hand: a template no
// established connection has assured yet, a UDP entry with
// persistence-engine data, IPv6, an IPv4 service tunnelled to an IPv6 real,
// and a connection of a service that is not xlb's.
var fixtureConns = []dataplane.Conn{
	{State: "ESTABLISHED", Protocol: lvs.TCP, Client: ap("10.78.1.1:46270"), Virtual: ap("10.78.0.100:80"), Real: ap("10.78.11.2:8080"), Expires: 899 * time.Second},
	{State: "ESTABLISHED", Protocol: lvs.TCP, Client: ap("10.78.1.1:46264"), Virtual: ap("10.78.0.100:80"), Real: ap("10.78.11.2:8080"), Expires: 899 * time.Second},
	{State: "ASSURED", Protocol: lvs.TCP, Client: ap("10.78.1.0:0"), Virtual: ap("10.78.0.100:80"), Real: ap("10.78.11.2:8080"), Expires: 59 * time.Second},
	{State: "NONE", Protocol: lvs.TCP, Client: ap("10.78.1.0:0"), Virtual: ap("10.78.0.100:80"), Real: ap("10.78.10.2:8080"), Expires: 296 * time.Second},
	{State: "UDP", Protocol: lvs.UDP, Client: ap("10.78.1.1:5060"), Virtual: ap("10.78.0.100:5060"), Real: ap("10.78.10.2:5060"), Expires: 299 * time.Second},
	{State: "SYN_RECV", Protocol: lvs.TCP, Client: ap("[fd00:79::2]:50000"), Virtual: ap("[fd00:79::1]:443"), Real: ap("[fd00:80::1]:443"), Expires: 59 * time.Second},
	{State: "FIN_WAIT", Protocol: lvs.TCP, Client: ap("10.79.0.1:54321"), Virtual: ap("10.79.0.100:80"), Real: ap("[fd00:80::2]:80"), Expires: 119 * time.Second},
	{State: "ESTABLISHED", Protocol: lvs.TCP, Client: ap("10.90.0.1:54321"), Virtual: ap("10.90.0.100:80"), Real: ap("10.91.0.2:80"), Expires: 900 * time.Second},
}

func TestParseConns(t *testing.T) {
	f, err := os.Open("testdata/ip_vs_conn")
	require.NoError(t, err)
	defer f.Close()
	got, err := parseConns(f)
	require.NoError(t, err)
	assert.Equal(t, fixtureConns, got)

	for _, bad := range []string{
		"TCP 0A4E0101 A3C2 0A4E0064 0050 0A4E0A02 1F90 ESTABLISHED",       // no expiry
		"XYZ 0A4E0101 A3C2 0A4E0064 0050 0A4E0A02 1F90 ESTABLISHED 1",     // protocol
		"TCP 0A4E01 A3C2 0A4E0064 0050 0A4E0A02 1F90 ESTABLISHED 1",       // short address
		"TCP 0A4E0101 A3C2 0A4E0064 50 0A4E0A02 1F90 ESTABLISHED 1",       // short port
		"TCP 0A4E0101 A3C2 0A4E0064 0050 0A4E0A02 1F90 ESTABLISHED -1",    // negative expiry
		"TCP 0A4E0101 A3C2 0A4E0064 0050 10.78.10.2 1F90 ESTABLISHED 1",   // dotted address
		"TCP 0A4E0101 A3C2 0A4E0064 0050 0A4E0A02 1F90 ESTABLISHED 1x",    // expiry
		"TCP 0A4E0101 A3C2 fe80::1%eth0 0050 0A4E0A02 1F90 ESTABLISHED 1", // zone
	} {
		_, err := parseConns(strings.NewReader(bad))
		assert.Error(t, err, bad)
	}
	got, err = parseConns(strings.NewReader("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"))
	require.NoError(t, err)
	assert.Empty(t, got)
}

// TestConnsOfOwnServices: Conns lists only the entries of xlb's services,
// templates included, in the table's order.
func TestConnsOfOwnServices(t *testing.T) {
	f := newFakeIPVS()
	e := &env{raw: f, fake: f}
	v, _ := e.open(t, Options{ConnTable: "testdata/ip_vs_conn"})
	require.NoError(t, v.Apply([]dataplane.Service{
		{ServiceKey: svcKey("10.78.0.100", 80, lvs.TCP), Scheduler: "rr"},
		{ServiceKey: svcKey("10.78.0.100", 5060, lvs.UDP), Scheduler: "rr"},
		{ServiceKey: svcKey("fd00:79::1", 443, lvs.TCP), Scheduler: "rr"},
	}))
	got, err := v.Conns()
	require.NoError(t, err)
	assert.Equal(t, fixtureConns[:6], got)
}

// formatConn writes a connection as the kernel's ip_vs_conn_seq_show does.
func formatConn(c dataplane.Conn) string {
	addr := func(a netip.Addr) string {
		if a.Is4() {
			b := a.As4()
			return fmt.Sprintf("%08X", binary.BigEndian.Uint32(b[:]))
		}
		b := a.As16()
		var g []string
		for i := 0; i < 16; i += 2 {
			g = append(g, fmt.Sprintf("%02x%02x", b[i], b[i+1]))
		}
		return strings.Join(g, ":")
	}
	proto := map[lvs.Protocol]string{0: "IP", 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP"}[c.Protocol]
	if proto == "" {
		proto = fmt.Sprintf("IP_%d", c.Protocol)
	}
	return fmt.Sprintf("%-3s %s %04X %s %04X %s %04X %-11s %7d\n", proto,
		addr(c.Client.Addr()), c.Client.Port(), addr(c.Virtual.Addr()), c.Virtual.Port(),
		addr(c.Real.Addr()), c.Real.Port(), c.State, c.Expires/time.Second)
}

// FuzzParseConns: the parser never panics, and what it reads it reads back
// the same from the kernel's format. Seeds in testdata/fuzz/FuzzParseConns.
func FuzzParseConns(f *testing.F) {
	b, err := os.ReadFile("testdata/ip_vs_conn")
	require.NoError(f, err)
	f.Add(string(b))
	f.Fuzz(func(t *testing.T, in string) {
		conns, err := parseConns(strings.NewReader(in))
		if err != nil {
			return
		}
		var out strings.Builder
		for _, c := range conns {
			out.WriteString(formatConn(c))
		}
		again, err := parseConns(strings.NewReader(out.String()))
		require.NoError(t, err, "reading back %q", out.String())
		assert.Equal(t, conns, again)
	})
}
