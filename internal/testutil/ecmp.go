package testutil

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ECMP is a DR topology with several directors behind a router that
// learns the VIP from each over BGP and spreads the client's connections
// over them (equal-cost multipath, hashed per 5-tuple):
//
//	client 10.77.0.1 ──┐              route VIP via 10.77.0.254
//	router 10.77.0.254 ┼─ br0         BIRD 2, ECMP over the directors
//	director i 10.77.0.(2+i) ┤        xlb, BGP AS 65001 to the router (AS 65000)
//	real i 10.77.0.(11+i) ┘           VIP on lo, answers the client directly
//
// The router forwards the client's packets back onto the LAN it got them
// from (redirects off); the reals answer the client on the LAN.
type ECMP struct {
	*DR
	Router        *NS
	RouterAddr    netip.Addr
	Directors     []*NS
	DirectorAddrs []netip.Addr
	// BirdSocket is birdc's control socket.
	BirdSocket string
	bird       *Child
}

// RouterAS and DirectorAS are the BGP autonomous systems of the topology.
const (
	RouterAS   = 65000
	DirectorAS = 65001
)

// NewECMP builds the topology with n directors (of at most 9) and reals
// reals, and starts BIRD on the router, with a passive BGP session open to
// each director address and its hold time at 3 s (so that a dead director
// is withdrawn 3 s after its last keepalive). Director 1 (index 0) also
// runs BFD with the router (300 ms, 3 missed: under a second). Close
// removes all of it.
func NewECMP(t testing.TB, directors, reals int) *ECMP {
	t.Helper()
	dr, err := NewDR(DROptions{Reals: reals, Native: true})
	if err != nil {
		t.Fatalf("ecmp topology: %v", err)
	}
	e := &ECMP{DR: dr, RouterAddr: netip.MustParseAddr("10.77.0.254")}
	t.Cleanup(func() { _ = e.Close() })
	fail := func(err error) {
		if err != nil {
			t.Helper()
			t.Fatalf("ecmp topology: %v", err)
		}
	}
	e.Directors = append(e.Directors, dr.Director)
	e.DirectorAddrs = append(e.DirectorAddrs, dr.DirectorAddr)
	for i := 1; i < directors; i++ {
		ns, err := NewNS(fmt.Sprintf("%s-d%d", strings.TrimSuffix(dr.Director.Name, "-director"), i+1))
		fail(err)
		e.closers = append(e.closers, ns.Close)
		addr := netip.AddrFrom4([4]byte{10, 77, 0, byte(2 + i)})
		fail(e.plug(ns, fmt.Sprintf("p-d%d", i+1), addr))
		fail(e.attachPass(e.Switch, fmt.Sprintf("p-d%d", i+1)))
		e.Directors = append(e.Directors, ns)
		e.DirectorAddrs = append(e.DirectorAddrs, addr)
	}
	e.Router, err = NewNS(strings.TrimSuffix(dr.Director.Name, "-director") + "-rt")
	fail(err)
	e.closers = append(e.closers, e.Router.Close)
	fail(e.plug(e.Router, "p-rt", e.RouterAddr))
	for _, kv := range [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.ipv4.conf.all.send_redirects", "0"}, {"net.ipv4.conf.eth0.send_redirects", "0"},
	} {
		fail(e.Router.Sysctl(kv[0], kv[1]))
	}
	// Per 5-tuple: each client connection to its own director (policy 3
	// with the 5-tuple's fields, 5.12 and later; else policy 1, layer 4).
	if e.Router.Sysctl("net.ipv4.fib_multipath_hash_fields", "0x0037") != nil || e.Router.Sysctl("net.ipv4.fib_multipath_hash_policy", "3") != nil {
		fail(e.Router.Sysctl("net.ipv4.fib_multipath_hash_policy", "1"))
	}
	// The client's frames cross XDP whole (see NewDR); the router's too.
	fail(e.Router.Exec("ethtool", "-K", "eth0", "tx", "off", "tso", "off", "gso", "off", "gro", "off"))
	fail(e.Client.Sysctl("net.ipv4.conf.all.accept_redirects", "0"))
	fail(e.Client.IP("route", "replace", dr.VIP.String()+"/32", "via", e.RouterAddr.String()))
	e.startBird(t)
	return e
}

// plug connects ns to the switch as eth0 with addr.
func (e *ECMP) plug(ns *NS, port string, addr netip.Addr) error {
	if err := ns.IP("link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", e.Switch.Name); err != nil {
		return err
	}
	if err := e.Switch.IP("link", "set", port, "master", "br0", "up"); err != nil {
		return err
	}
	_ = ns.Sysctl("net.ipv6.conf.all.disable_ipv6", "1")
	if err := ns.IP("addr", "add", addr.String()+"/24", "dev", "eth0"); err != nil {
		return err
	}
	return ns.IP("link", "set", "eth0", "up")
}

// BirdConfig is the router's bird.conf: a passive external session to
// each director (hold time 3 s; a peer that failed may come back after
// 1 s, not BIRD's default 60), routes imported into the kernel's table
// with every equal-cost path merged into one multipath route.
func (e *ECMP) BirdConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, `router id %s;
log stderr all;
protocol device {
	scan time 1;
}
protocol kernel {
	ipv4 {
		import none;
		export all;
	};
	merge paths on;
}
protocol bfd {
	interface "eth0" {
		min rx interval 300 ms;
		min tx interval 300 ms;
		multiplier 3;
	};
}
`, e.RouterAddr)
	for i, a := range e.DirectorAddrs {
		bfd := "off"
		if i == 0 {
			bfd = "on"
		}
		fmt.Fprintf(&b, `protocol bgp d%d {
	bfd %s;
	local %s as %d;
	neighbor %s as %d;
	passive on;
	hold time 3;
	keepalive time 1;
	error wait time 1, 10;
	ipv4 {
		import all;
		export none;
	};
}
`, i+1, bfd, e.RouterAddr, RouterAS, a, DirectorAS)
	}
	return b.String()
}

func (e *ECMP) startBird(t testing.TB) {
	t.Helper()
	bin, err := exec.LookPath("bird")
	if err != nil {
		bin = "/usr/sbin/bird"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("BIRD 2 is the router of the ECMP tests (apt-get install bird2; make test installs it): %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(e.BirdConfig()), 0o644); err != nil {
		t.Fatal(err)
	}
	e.BirdSocket = filepath.Join(dir, "bird.ctl")
	e.bird = StartChild(t, e.Router.Command(bin, "-f", "-c", conf, "-s", e.BirdSocket, "-P", filepath.Join(dir, "bird.pid")))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.Birdc("show", "status"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bird did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Birdc runs a birdc command against the router's BIRD.
func (e *ECMP) Birdc(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", e.BirdSocket}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// NextHops are the router's kernel next hops for the VIP now (none when
// it has no route).
func (e *ECMP) NextHops() []netip.Addr {
	out, err := exec.Command("ip", "-n", e.Router.Name, "-4", "route", "show", e.VIP.String()+"/32").CombinedOutput()
	if err != nil {
		return nil
	}
	var hops []netip.Addr
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "via" && i+1 < len(f) {
			if a, err := netip.ParseAddr(f[i+1]); err == nil {
				hops = append(hops, a)
			}
		}
	}
	return hops
}

// GoBGPConfig is director i's GoBGP configuration (gobgpd's TOML): AS
// DirectorAS, no listener (it dials the router), hold time 3 s; BFD for
// director 1 (index 0).
func (e *ECMP) GoBGPConfig(i int) string {
	bfd := ""
	if i == 0 {
		bfd = `  [neighbors.bfd.config]
    enabled = true
    desired-minimum-tx-interval = 300000
    required-minimum-receive = 300000
    detection-multiplier = 3
`
	}
	return fmt.Sprintf(`[global.config]
  as = %d
  router-id = "%s"
  port = -1

[[neighbors]]
  [neighbors.config]
    neighbor-address = "%s"
    peer-as = %d
  [neighbors.timers.config]
    hold-time = 3
    keepalive-interval = 1
    connect-retry = 1
    idle-hold-time-after-reset = 1
%s`, DirectorAS, e.DirectorAddrs[i], e.RouterAddr, RouterAS, bfd)
}
