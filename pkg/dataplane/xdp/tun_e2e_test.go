package xdp

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// TUN end to end: the same real servers an IPVS director would tunnel to,
// configured as for IPVS (ipip on tunl0, gue through a fou port, gre on
// gre0), behind xlb's XDP TUN, with real TCP and UDP: each tunnel type
// takes requests, an 8 MiB download and an 8 MiB upload whose segments do
// not fit the tunnel (the client learns the smaller path MTU from xlb's
// ICMP fragmentation needed), and UDP answers from the VIP.
func TestTUNEndToEnd(t *testing.T) {
	requireRoot(t)
	testutil.RequireXDPKernel(t)
	testutil.RequireTunnelDevices(t)
	tunnels := []lvs.Tunnel{{}, {Type: lvs.TunGUE, Port: 6080}, {Type: lvs.TunGRE}}
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newDRRig(t, len(tunnels), mode)
			topo := r.topo
			web := dataplane.Service{ServiceKey: r.svc, Scheduler: "rr"}
			dns := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: topo.VIP, Port: 53, Protocol: lvs.UDP}, Scheduler: "rr"}
			for i, tun := range tunnels {
				require.NoError(t, topo.TunnelReal(i, tun.Type.String(), tun.Port))
				web.Reals = append(web.Reals, dataplane.Real{Addr: topo.RealAddrs[i], Port: 80, Weight: 1, Forward: lvs.TUN, Tunnel: tun})
				dns.Reals = append(dns.Reals, dataplane.Real{Addr: topo.RealAddrs[i], Port: 53, Weight: 1, Forward: lvs.TUN, Tunnel: tun})
			}
			// A UDP server of a TUN (or DR) real binds the VIP, so that
			// its answers come from it.
			require.NoError(t, topo.ServeUDPOn(topo.VIP, 53))
			r.apply(t, web, dns)
			r.waitResolved(t)

			assert.Equal(t, []string{"r1", "r2", "r3", "r1", "r2", "r3"}, r.get(t, 6), "ipip, gue, gre in turn")

			c := topo.HTTPClient()
			c.Timeout = 120 * time.Second
			transfersChecked(t, c, "http://"+topo.VIP.String(), len(tunnels))
			st, err := r.x.Stats()
			require.NoError(t, err)
			assert.NotZero(t, st.Reasons["tun_frag_needed"], "the uploads' first segments were too big for the tunnels")
			// The client's route to the VIP learnt the tunnels' MTU.
			out, err := topo.Client.Command("ip", "route", "get", topo.VIP.String()).Output()
			require.NoError(t, err)
			assert.Contains(t, string(out), "mtu 14", "the client's path MTU to the VIP: %s", out)

			answers := udpAnswers(t, topo, 3)
			assert.Equal(t, []string{"r1:q0", "r2:q1", "r3:q2"}, answers)

			checkEachTunnel(t, r, web, map[lvs.TunnelType]string{lvs.TunIPIP: "tunl0", lvs.TunGUE: "tunl0", lvs.TunGRE: "gre0"})
		})
	}
}

// TUN on the wire, on this machine's kernel (which has no tunnel devices
// to decapsulate with): a client's real connection attempts through the
// director arrive at each real wrapped as the real's tunnel says, captured
// on the real's interface and taken apart by gopacket: the outer header
// from the director to the real, the client's SYN inside as it sent it.
func TestTUNFramesOnTheWire(t *testing.T) {
	tunnels := []lvs.Tunnel{{}, {Type: lvs.TunGUE, Port: 6080}, {Type: lvs.TunGRE}}
	want := []layers.IPProtocol{layers.IPProtocolIPv4, layers.IPProtocolUDP, layers.IPProtocolGRE}
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newDRRig(t, len(tunnels), mode)
			topo := r.topo
			web := dataplane.Service{ServiceKey: r.svc, Scheduler: "rr"}
			var caps []*testutil.Capture
			for i, tun := range tunnels {
				web.Reals = append(web.Reals, dataplane.Real{Addr: topo.RealAddrs[i], Port: 80, Weight: 1, Forward: lvs.TUN, Tunnel: tun})
				c, err := testutil.StartCapture(topo.Reals[i].Do, "eth0")
				require.NoError(t, err)
				t.Cleanup(func() { c.Close() })
				caps = append(caps, c)
			}
			r.apply(t, web)
			r.waitResolved(t)
			for range tunnels {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				c, err := topo.Client.DialContext(ctx, "tcp4", netip.AddrPortFrom(topo.VIP, 80).String())
				cancel()
				if err == nil {
					c.Close()
				}
			}
			for i, c := range caps {
				var found bool
				require.Eventually(t, func() bool {
					for _, f := range c.Frames(0) {
						if f.Outgoing {
							continue
						}
						pkt := gopacket.NewPacket(f.Frame, layers.LayerTypeEthernet, gopacket.Default)
						ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
						if !ok || !ip.SrcIP.Equal(net.IP(topo.DirectorAddr.AsSlice())) || ip.Protocol != want[i] {
							continue
						}
						d := decodeTunnel(t, f.Frame)
						if d.udp != nil {
							assert.EqualValues(t, 6080, d.udp.DstPort)
						}
						in := gopacket.NewPacket(d.inner, layers.LayerTypeIPv4, gopacket.Default)
						iip, ok := in.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
						require.True(t, ok, "inner: %v", in)
						tcp, ok := in.Layer(layers.LayerTypeTCP).(*layers.TCP)
						require.True(t, ok, "inner: %v", in)
						assert.Equal(t, topo.ClientAddr.AsSlice(), []byte(iip.SrcIP.To4()))
						assert.Equal(t, topo.VIP.AsSlice(), []byte(iip.DstIP.To4()))
						assert.True(t, tcp.SYN)
						assert.EqualValues(t, 80, tcp.DstPort)
						assert.Equal(t, iip.TTL, d.outer.TTL, "outer TTL is the client's")
						assert.Equal(t, topo.RealAddrs[i].AsSlice(), []byte(d.outer.DstIP.To4()))
						found = true
						return true
					}
					return false
				}, 5*time.Second, 50*time.Millisecond, "real %d never saw its %s frame", i+1, tunnels[i].Type)
				assert.True(t, found)
			}
		})
	}
}

// IPv6 TUN end to end (issue 13): the same real servers an IPVS director
// would tunnel an IPv6 service to (ip6ip6 on the kernel's ip6tnl0, gue
// behind a fou port opened for IPv6, gre on ip6gre0), behind xlb's XDP
// TUN, with real TCP and UDP over IPv6: requests in turn, an 8 MiB
// download checked by its SHA-256, and an 8 MiB upload whose full-size
// segments do not fit the tunnel (the client learns the smaller path MTU
// from xlb's ICMPv6 Packet Too Big), and UDP answers from the VIP.
func TestIPv6TUNEndToEnd(t *testing.T) {
	requireRoot(t)
	testutil.RequireXDPKernel(t)
	testutil.RequireTunnel6Devices(t)
	tunnels := []lvs.Tunnel{{}, {Type: lvs.TunGUE, Port: 6080}, {Type: lvs.TunGRE}}
	vip := netip.MustParseAddr("fd77:1::100")
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newDRRig(t, len(tunnels), mode)
			topo := r.topo
			reals := ipv6Topology(t, topo, vip)
			web := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr"}
			dns := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 53, Protocol: lvs.UDP}, Scheduler: "rr"}
			for i, tun := range tunnels {
				require.NoError(t, topo.TunnelReal6(i, vip, tun.Type.String(), tun.Port))
				web.Reals = append(web.Reals, dataplane.Real{Addr: reals[i], Port: 80, Weight: 1, Forward: lvs.TUN, Tunnel: tun})
				dns.Reals = append(dns.Reals, dataplane.Real{Addr: reals[i], Port: 53, Weight: 1, Forward: lvs.TUN, Tunnel: tun})
			}
			require.NoError(t, topo.ServeUDPOn(vip, 53))
			r.apply(t, web, dns)
			r.waitResolved(t)

			c := topo.HTTPClient()
			c.Timeout = 120 * time.Second
			url := "http://" + netip.AddrPortFrom(vip, 80).String()
			var names []string
			for i := range 6 {
				name, err := testutil.Get(context.Background(), c, url+"/")
				require.NoError(t, err, "request %d", i)
				names = append(names, name)
			}
			assert.Equal(t, []string{"r1", "r2", "r3", "r1", "r2", "r3"}, names, "ip6ip6, gue, gre in turn")

			transfersChecked(t, c, url, len(tunnels))
			st, err := r.x.Stats()
			require.NoError(t, err)
			assert.NotZero(t, st.Reasons["tun_frag_needed"], "the uploads' first segments were too big for the tunnels")
			out, err := topo.Client.Command("ip", "-6", "route", "get", vip.String()).Output()
			require.NoError(t, err)
			assert.Contains(t, string(out), "mtu 14", "the client's path MTU to the VIP: %s", out)

			assert.Equal(t, []string{"r1:q0", "r2:q1", "r3:q2"}, udpAnswersFrom(t, topo, vip, 3))

			checkEachTunnel(t, r, web, map[lvs.TunnelType]string{lvs.TunIPIP: "ip6tnl0", lvs.TunGUE: "ip6tnl0", lvs.TunGRE: "ip6gre0"})
		})
	}
}

// IPv6 TUN on the wire, on this machine's kernel (which has no tunnel
// devices to decapsulate with): a client's connection attempts to an IPv6
// VIP arrive at each real wrapped as its tunnel says, captured on the
// real's interface and taken apart by gopacket: the outer IPv6 header from
// the director's address to the real's, the client's SYN inside as sent.
func TestIPv6TUNFramesOnTheWire(t *testing.T) {
	tunnels := []lvs.Tunnel{{}, {Type: lvs.TunGUE, Port: 6080}, {Type: lvs.TunGRE}}
	want := []layers.IPProtocol{layers.IPProtocolIPv6, layers.IPProtocolUDP, layers.IPProtocolGRE}
	vip := netip.MustParseAddr("fd77:1::100")
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newDRRig(t, len(tunnels), mode)
			topo := r.topo
			reals := ipv6Topology(t, topo, vip)
			web := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr"}
			var caps []*testutil.Capture
			for i, tun := range tunnels {
				web.Reals = append(web.Reals, dataplane.Real{Addr: reals[i], Port: 80, Weight: 1, Forward: lvs.TUN, Tunnel: tun})
				c, err := testutil.StartCapture(topo.Reals[i].Do, "eth0")
				require.NoError(t, err)
				t.Cleanup(func() { c.Close() })
				caps = append(caps, c)
			}
			r.apply(t, web)
			r.waitResolved(t)
			for range tunnels {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				c, err := topo.Client.DialContext(ctx, "tcp6", netip.AddrPortFrom(vip, 80).String())
				cancel()
				if err == nil {
					c.Close()
				}
			}
			for i, c := range caps {
				require.Eventually(t, func() bool {
					for _, f := range c.Frames(0) {
						if f.Outgoing {
							continue
						}
						pkt := gopacket.NewPacket(f.Frame, layers.LayerTypeEthernet, gopacket.Default)
						ip, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
						if !ok || !ip.SrcIP.Equal(net.IP(testutil.DirectorAddr6.AsSlice())) || ip.NextHeader != want[i] {
							continue
						}
						d := decodeTunnel6(t, f.Frame)
						if d.udp != nil {
							assert.EqualValues(t, 6080, d.udp.DstPort)
						}
						in := gopacket.NewPacket(d.inner, layers.LayerTypeIPv6, gopacket.Default)
						iip, ok := in.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
						require.True(t, ok, "inner: %v", in)
						tcp, ok := in.Layer(layers.LayerTypeTCP).(*layers.TCP)
						require.True(t, ok, "inner: %v", in)
						assert.Equal(t, testutil.ClientAddr6.AsSlice(), []byte(iip.SrcIP))
						assert.Equal(t, vip.AsSlice(), []byte(iip.DstIP))
						assert.True(t, tcp.SYN)
						assert.EqualValues(t, 80, tcp.DstPort)
						assert.Equal(t, iip.HopLimit, d.outer.HopLimit, "outer hop limit is the client's")
						assert.Equal(t, reals[i].AsSlice(), []byte(d.outer.DstIP))
						return true
					}
					return false
				}, 5*time.Second, 50*time.Millisecond, "real %d never saw its %s frame", i+1, tunnels[i].Type)
			}
		})
	}
}

// transfersChecked makes, through base ("http://VIP:port") with c, n
// downloads of 8 MiB checked by their SHA-256, then n uploads of 8 MiB
// whose SHA-256 real i+1 answers for the i-th (rr over n reals).
func transfersChecked(t *testing.T, c *http.Client, base string, n int) {
	t.Helper()
	const size = 8 << 20
	want := sha256.New()
	_, _ = io.Copy(want, io.LimitReader(testutil.Pattern(), size))
	for i := range n {
		resp, err := c.Get(fmt.Sprintf("%s/bytes/%d", base, size))
		require.NoError(t, err, "download %d", i)
		got := sha256.New()
		m, err := io.Copy(got, resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.EqualValues(t, size, m)
		assert.Equal(t, want.Sum(nil), got.Sum(nil), "download %d checksum", i)
	}
	for i := range n {
		// Full-size segments through the tunnel.
		resp, err := c.Post(base+"/sha256", "application/octet-stream", io.LimitReader(testutil.Pattern(), size))
		require.NoError(t, err, "upload %d", i)
		ans, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("r%d %x", i+1, want.Sum(nil)), string(ans), "upload %d", i)
	}
}

// checkEachTunnel: checks through the data path reach each of web's TUN
// reals through its tunnel; with the VIP off its tunnel device (devs),
// the real fails them, while a check of its own address still passes.
func checkEachTunnel(t *testing.T, r *drRig, web dataplane.Service, devs map[lvs.TunnelType]string) {
	t.Helper()
	vip := netip.PrefixFrom(web.Addr, web.Addr.BitLen()).String()
	for i, real := range web.Reals {
		tun := real.Tunnel
		mark, release, err := r.x.CheckTarget(web.ServiceKey, real)
		require.NoError(t, err)
		name, err := checkGet(t, r.topo.Director, real.Addr, mark)
		require.NoError(t, err, "a check through the %s tunnel", tun.Type)
		assert.Equal(t, fmt.Sprintf("r%d", i+1), name)
		dev := devs[tun.Type]
		require.NoError(t, r.topo.Reals[i].IP("addr", "del", vip, "dev", dev))
		_, err = checkGet(t, r.topo.Director, real.Addr, mark)
		assert.Error(t, err, "the %s real without the VIP on %s fails its check", tun.Type, dev)
		_, err = checkGet(t, r.topo.Director, real.Addr, 0)
		assert.NoError(t, err, "keepalived's check of its own address passes")
		add := []string{"addr", "add", vip, "dev", dev}
		if web.Addr.Is6() {
			add = append(add, "nodad")
		}
		require.NoError(t, r.topo.Reals[i].IP(add...))
		release()
	}
}

// Tunnels across families end to end (issue 13), with the kernel's own
// devices set up as for IPVS: an IPv4 VIP served by IPv6 reals (the VIP
// on ip6tnl0 in mode any, or behind an IPv6 fou port, or on ip6gre0) and
// an IPv6 VIP served by IPv4 reals (on sit0, behind an IPv4 fou port, on
// gre0); requests in turn, 8 MiB downloads and uploads checked by
// SHA-256 (the uploads' first segments too big once wrapped: the client
// learns the path MTU from the director). Native and generic XDP, in the
// VMs (this machine's kernel has no tunnel devices).
func TestTUNAcrossFamiliesEndToEnd(t *testing.T) {
	requireRoot(t)
	testutil.RequireXDPKernel(t)
	testutil.RequireTunnel64Devices(t)
	tunnels := []lvs.Tunnel{{}, {Type: lvs.TunGUE, Port: 6080}, {Type: lvs.TunGRE}}
	vip6 := netip.MustParseAddr("fd77:1::100")
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newDRRig(t, len(tunnels), mode)
			topo := r.topo
			reals6 := ipv6Topology(t, topo, vip6)
			web4 := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: topo.VIP, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr"}
			web6 := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr"}
			for i, tun := range tunnels {
				require.NoError(t, topo.TunnelReal46(i, tun.Type.String(), tun.Port))
				require.NoError(t, topo.TunnelReal64(i, vip6, tun.Type.String(), tun.Port))
				web4.Reals = append(web4.Reals, dataplane.Real{Addr: reals6[i], Port: 80, Weight: 1, Forward: lvs.TUN, Tunnel: tun})
				web6.Reals = append(web6.Reals, dataplane.Real{Addr: topo.RealAddrs[i], Port: 80, Weight: 1, Forward: lvs.TUN, Tunnel: tun})
			}
			r.apply(t, web4, web6)
			r.waitResolved(t)

			c := topo.HTTPClient()
			c.Timeout = 120 * time.Second
			for _, tc := range []struct {
				name string
				vip  netip.Addr
			}{{"IPv4 VIP, IPv6 reals", topo.VIP}, {"IPv6 VIP, IPv4 reals", vip6}} {
				url := "http://" + netip.AddrPortFrom(tc.vip, 80).String()
				var names []string
				for i := range 6 {
					name, err := testutil.Get(context.Background(), c, url+"/")
					require.NoError(t, err, "%s: request %d", tc.name, i)
					names = append(names, name)
				}
				assert.Equal(t, []string{"r1", "r2", "r3", "r1", "r2", "r3"}, names, "%s: ipip, gue, gre in turn", tc.name)
				transfersChecked(t, c, url, len(tunnels))
			}
			st, err := r.x.Stats()
			require.NoError(t, err)
			assert.NotZero(t, st.Reasons["tun_frag_needed"], "the uploads' first segments were too big for the tunnels")
			assert.Zero(t, st.Reasons["tun_too_big"])
		})
	}
}
