package xdp

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/syncd"
)

// kernelConn is a line of ipvsadm -Lnc: protocol, state, client,
// virtual, destination.
type kernelConn struct{ proto, state, client, virtual, dest string }

func ipvsConns(t *testing.T, ns *testutil.NS) map[string]kernelConn {
	out, err := exec.Command("ip", "netns", "exec", ns.Name, "ipvsadm", "-Lnc").CombinedOutput()
	require.NoError(t, err, "%s", out)
	m := map[string]kernelConn{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 6 || (f[0] != "TCP" && f[0] != "UDP") {
			continue
		}
		m[f[3]] = kernelConn{proto: f[0], state: f[2], client: f[3], virtual: f[4], dest: f[5]}
	}
	return m
}

// The kernel's IPVS and xlb's XDP data plane sync each other on IPVS's
// wire (the 6.1 VM; four namespaces: a kernel director K, an xlb
// director X joined to it by sync0, a client C and a NAT real D behind
// K). Kernel master, xlb backup: the connections real traffic makes
// through K's IPVS (TCP and UDP) appear in X's table with their real and
// state, a FIN's change follows, another syncid is ignored. xlb master,
// kernel backup: flows X forwards appear in K's ipvsadm -Lnc (a FULLNAT
// one too, its local address in an option the kernel skips), and a FIN's
// change follows.
func TestSyncWithKernelIPVS(t *testing.T) {
	requireRoot(t)
	if out, err := exec.Command("modprobe", "ip_vs").CombinedOutput(); err != nil {
		if why := testutil.IPVSMissing(); why != "" && os.Getenv("VMTEST") == "" {
			t.Skipf("%s; make vmtest KERNEL=6.1 runs this", why)
		}
		t.Fatalf("modprobe ip_vs: %v: %s", err, out)
	}
	if _, err := exec.LookPath("ipvsadm"); err != nil {
		t.Fatalf("ipvsadm is needed (apt install ipvsadm): %v", err)
	}
	syncd.PollInterval = 50 * time.Millisecond
	mk := func(role string) *testutil.NS {
		ns, err := testutil.NewNS("xlb-s-" + testutil.Suffix() + "-" + role)
		require.NoError(t, err)
		t.Cleanup(func() { ns.Close() })
		return ns
	}
	nsK, nsC, nsD := mk("k"), mk("c"), mk("d")
	nsX, _ := testNS(t)
	link := func(a *testutil.NS, aif, aaddr string, b *testutil.NS, bif, baddr string) {
		require.NoError(t, a.IP("link", "add", aif, "type", "veth", "peer", "name", bif, "netns", b.Name))
		require.NoError(t, a.IP("addr", "add", aaddr, "dev", aif))
		require.NoError(t, b.IP("addr", "add", baddr, "dev", bif))
		require.NoError(t, a.IP("link", "set", aif, "up"))
		require.NoError(t, b.IP("link", "set", bif, "up"))
	}
	link(nsK, "sync0", "10.99.0.1/24", nsX, "sync0", "10.99.0.2/24")
	link(nsK, "c0", "192.0.2.1/24", nsC, "eth0", "192.0.2.7/24")
	link(nsK, "d0", "10.0.0.1/24", nsD, "eth0", "10.0.0.11/24")
	require.NoError(t, nsC.IP("route", "add", "10.0.0.100/32", "via", "192.0.2.1"))
	require.NoError(t, nsD.IP("route", "add", "default", "via", "10.0.0.1"))
	require.NoError(t, nsK.IP("addr", "add", "10.0.0.100/32", "dev", "lo"))
	require.NoError(t, nsK.IP("link", "set", "lo", "up"))
	require.NoError(t, nsK.Sysctl("net.ipv4.ip_forward", "1"))
	ipvsadm := func(args ...string) {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"netns", "exec", nsK.Name, "ipvsadm"}, args...)...).CombinedOutput()
		require.NoError(t, err, "ipvsadm %v: %s", args, out)
	}
	ipvsadm("-A", "-t", "10.0.0.100:80", "-s", "rr")
	ipvsadm("-a", "-t", "10.0.0.100:80", "-r", "10.0.0.11:8080", "-m")
	ipvsadm("-A", "-u", "10.0.0.100:53", "-s", "rr")
	ipvsadm("-a", "-u", "10.0.0.100:53", "-r", "10.0.0.11:5353", "-m")

	// D serves TCP on 8080 and keeps each connection open.
	l, err := nsD.Listen("tcp4", "0.0.0.0:8080")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 64)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
				}
			}()
		}
	}()

	// ... and takes UDP on 5353 (no port unreachable back to the client).
	pc, err := nsD.ListenPacket("udp4", "0.0.0.0:5353")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })

	x := openTest(t, nsX, staticResolver{netip.MustParseAddr("10.0.0.11"): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}})
	apply(t, nsX, x,
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: netip.MustParseAddr("10.0.0.11"), Port: 8080, Weight: 1, Forward: lvs.NAT}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 53, Protocol: lvs.UDP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: netip.MustParseAddr("10.0.0.11"), Port: 5353, Weight: 1, Forward: lvs.NAT}}},
		// FULLNAT, which the kernel lacks: its records carry xlb's
		// local address option.
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 8081, Protocol: lvs.TCP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{netip.MustParseAddr("10.0.0.50")},
			Reals:      []dataplane.Real{{Addr: netip.MustParseAddr("10.0.0.11"), Port: 8080, Weight: 1, Forward: lvs.FNAT}}})

	// Kernel master, xlb backup of another syncid first: ignored.
	ipvsadm("--start-daemon", "master", "--mcast-interface", "sync0", "--syncid", "5")
	startSync(t, nsX, x, dataplane.SyncDaemon{Backup: true, SyncID: 9})
	var conns []net.Conn
	dial := func() net.Conn {
		c, err := nsC.DialContext(context.Background(), "tcp4", "10.0.0.100:80")
		require.NoError(t, err)
		_, err = c.Write([]byte("hello")) // the third packet: IPVS syncs now
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	conns = append(conns, dial())
	require.Eventually(t, func() bool { return x.SyncStats().OtherSyncID > 0 }, 10*time.Second, 50*time.Millisecond,
		"the kernel master's messages did not arrive")
	assert.Empty(t, connsByClient(t, x), "records of another syncid were installed")
	require.NoError(t, nsX.Do(func() error { return x.StopDaemon(true) }))
	startSync(t, nsX, x, dataplane.SyncDaemon{Backup: true, SyncID: 5})
	for range 4 {
		conns = append(conns, dial())
	}
	u, err := nsC.DialContext(context.Background(), "udp4", "10.0.0.100:53")
	require.NoError(t, err)
	defer u.Close()
	for range 3 {
		_, err = u.Write([]byte("q"))
		require.NoError(t, err)
	}
	// The kernel flushes a part-filled buffer within 2 s.
	require.Eventually(t, func() bool { return len(connsByClient(t, x)) >= 5 }, 10*time.Second, 50*time.Millisecond)
	onK, onX := ipvsConns(t, nsK), connsByClient(t, x)
	for _, c := range conns[1:] {
		k := c.LocalAddr().String()
		require.Contains(t, onK, k)
		got, ok := onX[netip.MustParseAddrPort(k)]
		if assert.True(t, ok, "%s is not on the xlb backup", k) {
			assert.Equal(t, "ESTABLISHED", got.State)
			assert.Equal(t, onK[k].dest, got.Real.String())
			assert.Equal(t, "10.0.0.100:80", got.Virtual.String())
		}
	}
	uk := u.LocalAddr().String()
	require.Eventually(t, func() bool { _, ok := connsByClient(t, x)[netip.MustParseAddrPort(uk)]; return ok }, 10*time.Second, 50*time.Millisecond,
		"the UDP connection is not on the xlb backup")
	assert.Equal(t, "UDP", connsByClient(t, x)[netip.MustParseAddrPort(uk)].State)

	// A FIN: the kernel sends the new state at once.
	fin := conns[1].LocalAddr().String()
	require.NoError(t, conns[1].(*net.TCPConn).CloseWrite())
	require.Eventually(t, func() bool {
		return connsByClient(t, x)[netip.MustParseAddrPort(fin)].State != "ESTABLISHED"
	}, 10*time.Second, 50*time.Millisecond, "the FIN's state did not reach the xlb backup")
	t.Logf("after the FIN: kernel %s, xlb %s", ipvsConns(t, nsK)[fin].state, connsByClient(t, x)[netip.MustParseAddrPort(fin)].State)

	// xlb master, kernel backup: flows X forwards appear in K's table.
	ipvsadm("--stop-daemon", "master")
	ipvsadm("--start-daemon", "backup", "--mcast-interface", "sync0", "--syncid", "5")
	require.NoError(t, nsX.Do(func() error { return x.StopDaemon(true) }))
	startSync(t, nsX, x, dataplane.SyncDaemon{SyncID: 5})
	other := netip.MustParseAddr("198.51.100.9")
	for p := range uint16(5) {
		for _, fl := range []uint8{testutil.TCPSyn, testutil.TCPAck} {
			v, _ := run(t, nsX, x, tcpFrame(other, 40000+p, fl))
			require.EqualValues(t, xdpTX, v)
		}
	}
	// A FULLNAT flow: the kernel skips xlb's optional option and
	// installs the rest of the record, as ip_vs_proc_sync_conn reads it.
	for _, fl := range []uint8{testutil.TCPSyn, testutil.TCPAck} {
		f := syn(41000)
		f.Src, f.DstPort, f.TCPFlags = other, 8081, fl
		v, _ := run(t, nsX, x, f.Bytes())
		require.EqualValues(t, xdpTX, v)
	}
	require.Eventually(t, func() bool {
		onK := ipvsConns(t, nsK)
		for p := range 5 {
			c, ok := onK[netip.AddrPortFrom(other, uint16(40000+p)).String()]
			if !ok || c.state != "ESTABLISHED" || c.dest != "10.0.0.11:8080" || c.virtual != "10.0.0.100:80" {
				return false
			}
		}
		c, ok := onK[netip.AddrPortFrom(other, 41000).String()]
		return ok && c.state == "ESTABLISHED" && c.dest == "10.0.0.11:8080" && c.virtual == "10.0.0.100:8081"
	}, 10*time.Second, 50*time.Millisecond, "xlb's flows did not reach the kernel backup")
	v, _ := run(t, nsX, x, tcpFrame(other, 40000, testutil.TCPFin|testutil.TCPAck))
	require.EqualValues(t, xdpTX, v)
	want := connsByClient(t, x)[netip.AddrPortFrom(other, 40000)].State
	require.Eventually(t, func() bool {
		return ipvsConns(t, nsK)[netip.AddrPortFrom(other, 40000).String()].state == want
	}, 10*time.Second, 50*time.Millisecond, "the FIN's state %s did not reach the kernel backup", want)
	ipvsadm("--stop-daemon", "backup")
}
