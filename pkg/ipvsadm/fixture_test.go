package ipvsadm

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/lvs"
)

var (
	mustAddr = netip.MustParseAddr
	mustAP   = netip.MustParseAddrPort
)

// fixtureV4 is an IPv4 table that exercises every column of every listing:
// each forwarding method, persistence with and without a mask, scheduler
// flags, one-packet scheduling, a fwmark service, counters in every
// K/M/G/T range, and addresses more than 2^31 apart, which ipvsadm's
// comparison sorts the wrong way round. The stand-in kernel can serve it
// to the real ipvsadm (see testdata/ipvsshim), so its goldens are checked.
func fixtureV4() *State {
	return &State{
		Info:     DefaultInfo,
		Timeouts: DefaultTimeouts,
		Services: []Service{
			{
				Protocol: lvs.TCP, Addr: mustAddr("10.0.0.1"), Port: 80,
				Scheduler: "wrr", Netmask: 0xffffffff,
				Stats: Stats{Conns: 123456, InPkts: 99999999, OutPkts: 100000000, InBytes: 999999999, OutBytes: 1000000000},
				Rates: Rates{CPS: 12, InPPS: 3456, OutPPS: 3100, InBPS: 123456789, OutBPS: 4294967295},
				Dests: []Dest{
					{Addr: mustAddr("192.168.1.11"), Port: 80, Forward: lvs.DR, Weight: 3, ActiveConns: 12, InactConns: 340,
						Stats: Stats{Conns: 1, InPkts: 2, OutPkts: 3, InBytes: 99999999999, OutBytes: 100000000000},
						Rates: Rates{CPS: 1, InPPS: 22, OutPPS: 333, InBPS: 100000000, OutBPS: 99999999}},
					{Addr: mustAddr("192.168.1.10"), Port: 80, Forward: lvs.DR, Weight: 1, ActiveConns: 4, InactConns: 0, PersistConns: 7,
						Stats: Stats{InBytes: 99999999999999, OutBytes: 100000000000000}},
					{Addr: mustAddr("10.1.1.1"), Port: 8080, Forward: lvs.NAT, Weight: 0, UThreshold: 100, LThreshold: 50,
						Stats: Stats{Conns: 4294967295, InBytes: 18446744073709551615}},
				},
			},
			{
				Protocol: lvs.UDP, Addr: mustAddr("10.0.0.1"), Port: 53,
				Scheduler: "rr", Flags: lvs.OnePacket, Netmask: 0xffffffff,
				Dests: []Dest{{Addr: mustAddr("192.168.1.53"), Port: 53, Forward: lvs.NAT, Weight: 1, InactConns: 17}},
			},
			{
				Protocol: lvs.TCP, Addr: mustAddr("10.0.0.2"), Port: 443,
				Scheduler: "sh", Flags: lvs.Sched1 | lvs.Sched2,
				Persistent: true, Timeout: 1800, Netmask: 0xffffff00,
				Dests: []Dest{
					{Addr: mustAddr("172.16.0.2"), Port: 443, Forward: lvs.TUN, Weight: 65535},
					{Addr: mustAddr("172.16.0.1"), Port: 443, Forward: lvs.Local, Weight: 2147483647},
				},
			},
			{
				Protocol: lvs.TCP, FWMark: 5, Addr: netip.IPv4Unspecified(),
				Scheduler: "wlc", Persistent: true, Timeout: 360, Netmask: 0xffffffff,
				Dests: []Dest{{Addr: mustAddr("192.168.3.1"), Port: 0, Forward: lvs.DR, Weight: 1}},
			},
			{
				Protocol: lvs.TCP, Addr: mustAddr("192.168.100.1"), Port: 21,
				Scheduler: "lc", Flags: lvs.Sched1, Netmask: 0xffffffff,
			},
			{
				Protocol: lvs.SCTP, Addr: mustAddr("10.0.0.3"), Port: 3868,
				Scheduler: "rr", Persistent: true, Timeout: 60, Netmask: 0xff00ff00,
				Dests: []Dest{{Addr: mustAddr("192.168.4.1"), Port: 3868, Forward: lvs.DR, Weight: 5}},
			},
			{
				Protocol: lvs.TCP, Addr: mustAddr("10.0.0.1"), Port: 8080,
				Scheduler: "wlc", Netmask: 0xffffffff,
			},
		},
		Conns: []Conn{
			{Protocol: lvs.TCP, Expires: 899*time.Second + 600*time.Millisecond, State: "ESTABLISHED",
				Client: mustAP("203.0.113.9:51234"), Virtual: mustAP("10.0.0.1:80"), Dest: mustAP("192.168.1.11:80")},
			{Protocol: lvs.UDP, Expires: 5 * time.Second, State: "UDP",
				Client: mustAP("198.51.100.7:5353"), Virtual: mustAP("10.0.0.1:53"), Dest: mustAP("192.168.1.53:53")},
			{Protocol: lvs.TCP, Expires: 6000 * time.Second, State: "NONE",
				Client: mustAP("203.0.113.9:0"), Virtual: mustAP("10.0.0.2:443"), Dest: mustAP("172.16.0.2:443")},
			{Protocol: lvs.UDP, Expires: 119 * time.Second, State: "UDP", PEName: "sip", PEData: "call-1@example",
				Client: mustAP("198.51.100.8:5060"), Virtual: mustAP("10.0.0.1:53"), Dest: mustAP("192.168.1.53:53")},
		},
	}
}

// fixtureV6 is what the stand-in kernel cannot serve (IPv6 and tunnel
// types travel only over netlink): its goldens come from reading ipvsadm's
// printf formats alone.
func fixtureV6() *State {
	return &State{
		Info:     Info{Version: 0x010201, Size: 1048576},
		Timeouts: Timeouts{TCP: 7200, TCPFin: 60, UDP: 120},
		Services: []Service{
			{
				Protocol: lvs.TCP, Addr: mustAddr("2001:db8::10"), Port: 443,
				Scheduler: "mh", Flags: lvs.Sched2, Persistent: true, Timeout: 600, Netmask: 64,
				Dests: []Dest{
					{Addr: mustAddr("2001:db8:1::2"), Port: 443, Forward: lvs.NAT, Weight: 10, ActiveConns: 1},
					{Addr: mustAddr("2001:db8:1::1"), Port: 8443, Forward: lvs.NAT, Weight: 10, InactConns: 2},
					{Addr: mustAddr("192.0.2.7"), Port: 443, Forward: lvs.TUN, Tunnel: TunnelGUE, TunPort: 6080, TunFlags: TunnelCsum, Weight: 1},
					{Addr: mustAddr("2001:db8:ffff:ffff:ffff:ffff:ffff:fff1"), Port: 443, Forward: lvs.TUN, Tunnel: TunnelGRE, TunFlags: TunnelNoCsum, Weight: 1},
				},
				Stats: Stats{Conns: 5, InPkts: 50, OutPkts: 40, InBytes: 5000, OutBytes: 4000},
			},
			{
				Protocol: lvs.UDP, Addr: mustAddr("::ffff:192.0.2.1"), Port: 53,
				Scheduler: "sh", Flags: lvs.Sched3, Netmask: 128,
				Dests: []Dest{{Addr: mustAddr("::192.0.2.2"), Port: 53, Forward: lvs.DR, Weight: 1}},
			},
			{
				Protocol: lvs.TCP, FWMark: 7, Addr: netip.IPv6Unspecified(),
				Scheduler: "rr", Persistent: true, Timeout: 300, Netmask: 128, PE: "sip",
				Dests: []Dest{{Addr: mustAddr("2001:db8:2::1"), Port: 0, Forward: lvs.DR, Weight: 1}},
			},
			{
				Protocol: lvs.TCP, Addr: mustAddr("10.9.9.9"), Port: 80,
				Scheduler: "wrr", Netmask: 0xffffffff,
				Dests: []Dest{{Addr: mustAddr("2001:db8:3::1"), Port: 80, Forward: lvs.TUN, Weight: 2}},
			},
		},
		Conns: []Conn{
			{Protocol: lvs.TCP, Expires: 61 * time.Second, State: "FIN_WAIT",
				Client: mustAP("[2001:db8:ff::1]:40000"), Virtual: mustAP("[2001:db8::10]:443"), Dest: mustAP("[2001:db8:1::2]:443")},
		},
	}
}

var fixtures = map[string]func() *State{"v4": fixtureV4, "v6": fixtureV6}

// testNames resolves ports as this machine's /etc/services does for the
// ports in the fixtures, and no host names (the stand-in kernel keeps the
// real ipvsadm off DNS too).
type testNames struct{}

func (testNames) HostName(netip.Addr) (string, bool) { return "", false }
func (testNames) PortName(port uint16, p lvs.Protocol) (string, bool) {
	switch {
	case port == 80 && p == lvs.TCP:
		return "http", true
	case port == 443 && (p == lvs.TCP || p == lvs.UDP):
		return "https", true
	case port == 53 && (p == lvs.TCP || p == lvs.UDP):
		return "domain", true
	case port == 21 && p == lvs.TCP:
		return "ftp", true
	case port == 8080 && p == lvs.TCP:
		return "http-alt", true
	case port == 5060 && (p == lvs.TCP || p == lvs.UDP):
		return "sip", true
	case port == 5353 && p == lvs.UDP:
		return "mdns", true
	}
	return "", false
}

// writeShimState writes fixtureV4 into dir in the stand-in kernel's
// formats (testdata/ipvsshim/README.md): "state" and "conn".
func writeShimState(t *testing.T, dir string) {
	t.Helper()
	st := fixtureV4()
	var b strings.Builder
	v := st.info()
	fmt.Fprintf(&b, "info %d %d\n", v.Version, v.Size)
	fmt.Fprintf(&b, "timeout %d %d %d\n", st.Timeouts.TCP, st.Timeouts.TCPFin, st.Timeouts.UDP)
	stats := func(s Stats, r Rates) string {
		return fmt.Sprintf("%d %d %d %d %d %d %d %d %d %d", s.Conns, s.InPkts, s.OutPkts,
			s.InBytes, s.OutBytes, r.CPS, r.InPPS, r.OutPPS, r.InBPS, r.OutBPS)
	}
	for _, s := range st.Services {
		flags := uint32(s.Flags)
		if s.Persistent {
			flags |= uint32(lvs.Persistent)
		}
		fmt.Fprintf(&b, "svc %d %s %d %d %s %d %d %d %s\n", s.Protocol, s.Addr, s.Port, s.FWMark,
			s.Scheduler, flags, s.Timeout, s.Netmask, stats(s.Stats, s.Rates))
		for _, d := range s.Dests {
			fmt.Fprintf(&b, "dest %s %d %d %d %d %d %d %d %d %s\n", d.Addr, d.Port, d.Forward, d.Weight,
				d.UThreshold, d.LThreshold, d.ActiveConns, d.InactConns, d.PersistConns, stats(d.Stats, d.Rates))
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "state"), []byte(b.String()), 0o644))

	// /proc/net/ip_vs_conn as the kernel writes it for IPv4.
	hex := func(ap netip.AddrPort) string {
		a := ap.Addr().As4()
		return fmt.Sprintf("%02X%02X%02X%02X %04X", a[0], a[1], a[2], a[3], ap.Port())
	}
	b.Reset()
	b.WriteString("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n")
	for _, c := range st.Conns {
		pe := ""
		if c.PEName != "" {
			pe = " " + c.PEName + " " + c.PEData
		}
		fmt.Fprintf(&b, "%-3s %s %s %s %-11s %7d%s\n", c.Protocol, hex(c.Client), hex(c.Virtual),
			hex(c.Dest), c.State, int(c.Expires.Seconds()), pe)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "conn"), []byte(b.String()), 0o644))
}
