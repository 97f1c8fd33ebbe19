package vrrp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/internal/nlretry"
	"github.com/xlbproject/xlb/internal/testutil"
)

// The interop harness: two network namespaces joined by a veth pair,
// keepalived in one (vka), xlb's Runner in the other (vxlb), and a packet
// capture (AF_PACKET, in Go) on each end, so each side's capture holds what
// the other side sent.

func interopPrereqs(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("interop test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("interop test needs root (network namespaces, raw sockets)")
	}
	requireTool(t, "ip", "iproute2")
	requireTool(t, "keepalived", "keepalived") // the VM guest has it too (vmtest copies it in)
}

// requireTool fails the test when a tool that tools/deps.sh installs for
// make test (iproute2, keepalived, ...) is missing: a test that skips
// there passes without checking anything.
func requireTool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("needs %s, which tools/deps.sh test installs (apt-get install %s): %v", name, pkg, err)
	}
}

func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

// newNetNS creates a named network namespace removed at cleanup.
func newNetNS(t *testing.T, name string) netns.NsHandle {
	t.Helper()
	runCmd(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	require.NoError(t, err)
	t.Cleanup(func() { h.Close() })
	return h
}

// inNetNS runs f on a thread switched into ns. A thread that cannot be
// switched back is left locked, so the runtime discards it.
func inNetNS(t *testing.T, ns netns.NsHandle, f func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		f()
		if err := netns.Set(orig); err != nil {
			errc <- err
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	require.NoError(t, <-errc)
}

func findAddr(h *netlink.Handle, ifname string, want netip.Addr) (netlink.Addr, bool, error) {
	link, err := h.LinkByName(ifname)
	if err != nil {
		return netlink.Addr{}, false, err
	}
	family := netlink.FAMILY_V4
	if want.Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := nlretry.Dump(func() ([]netlink.Addr, error) { return h.AddrList(link, family) })
	if err != nil {
		return netlink.Addr{}, false, err
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == want {
			return a, true, nil
		}
	}
	return netlink.Addr{}, false, nil
}

func hasAddr(t *testing.T, h *netlink.Handle, ifname string, want netip.Addr) bool {
	t.Helper()
	_, ok, err := findAddr(h, ifname, want)
	require.NoError(t, err)
	return ok
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// watchVIP polls, every 10 ms and with its own netlink handle, until vip is
// on ifname in ns, and sends the time it first saw it: what a user sees as
// "that node is MASTER".
func watchVIP(t *testing.T, ns netns.NsHandle, ifname string, vip netip.Addr) <-chan time.Time {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	seen, stop, done := make(chan time.Time, 1), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, ok, err := findAddr(h, ifname, vip); err == nil && ok {
				seen <- time.Now()
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done; h.Close() })
	return seen
}

func awaitVIP(t *testing.T, seen <-chan time.Time, within time.Duration, what string) time.Time {
	t.Helper()
	select {
	case at := <-seen:
		return at
	case <-time.After(within):
		t.Fatalf("%s: VIP not there within %v", what, within)
		return time.Time{}
	}
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// killIfKeepalived SIGKILLs pid if it is still a keepalived process.
func killIfKeepalived(pid int) {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err == nil && strings.TrimSpace(string(comm)) == "keepalived" {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

const (
	interopKAIf, interopXIf = "vka", "vxlb"
	interopVRID             = 51
)

var (
	interopKAIP  = netip.MustParseAddr("10.99.0.1")
	interopXIP   = netip.MustParseAddr("10.99.0.2")
	interopVIP   = netip.MustParsePrefix("10.99.0.100/24")
	interopKAIP6 = netip.MustParseAddr("fd00:99::1")
	interopXIP6  = netip.MustParseAddr("fd00:99::2")
	// Two IPv6 VIPs: keepalived adds a /128 deprecated (preferred_lft 0)
	// and any other length not, so both kinds are compared.
	interopVIPs6 = []netip.Prefix{netip.MustParsePrefix("fd00:99::100/64"), netip.MustParsePrefix("fd00:99::101/128")}
)

// interopNet is the two namespaces and the veth between them.
type interopNet struct {
	nsKA, nsX   string
	kaNS, xNS   netns.NsHandle
	kaH, xH     *netlink.Handle
	kaMAC, xMAC net.HardwareAddr
	kaLL, xLL   netip.Addr // link-local addresses
	// sniffKA captures on keepalived's end (what xlb sends), sniffX on
	// xlb's end (what keepalived sends).
	sniffKA, sniffX *sniffer
}

func newInteropNet(t *testing.T) *interopNet {
	t.Helper()
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	n := &interopNet{nsKA: "xlbka-" + suffix, nsX: "xlbx-" + suffix}
	n.kaNS = newNetNS(t, n.nsKA)
	n.xNS = newNetNS(t, n.nsX)
	// No duplicate address detection: the link-local and test addresses
	// are usable as soon as the link is up instead of ~1 s later.
	for _, ns := range []netns.NsHandle{n.kaNS, n.xNS} {
		var err error
		inNetNS(t, ns, func() {
			for _, c := range []string{"all", "default"} {
				if err == nil {
					err = os.WriteFile("/proc/sys/net/ipv6/conf/"+c+"/accept_dad", []byte("0"), 0)
				}
			}
		})
		require.NoError(t, err, "disable IPv6 DAD")
	}

	runCmd(t, "ip", "-n", n.nsKA, "link", "add", interopKAIf, "type", "veth", "peer", "name", interopXIf, "netns", n.nsX)
	runCmd(t, "ip", "-n", n.nsKA, "addr", "add", interopKAIP.String()+"/24", "dev", interopKAIf)
	runCmd(t, "ip", "-n", n.nsX, "addr", "add", interopXIP.String()+"/24", "dev", interopXIf)
	runCmd(t, "ip", "-n", n.nsKA, "addr", "add", interopKAIP6.String()+"/64", "dev", interopKAIf, "nodad")
	runCmd(t, "ip", "-n", n.nsX, "addr", "add", interopXIP6.String()+"/64", "dev", interopXIf, "nodad")
	// Captures first, so they see everything from the link coming up on.
	n.sniffKA = startSniffer(t, n.kaNS, interopKAIf)
	n.sniffX = startSniffer(t, n.xNS, interopXIf)
	for _, l := range [][]string{{n.nsKA, interopKAIf}, {n.nsKA, "lo"}, {n.nsX, interopXIf}, {n.nsX, "lo"}} {
		runCmd(t, "ip", "-n", l[0], "link", "set", l[1], "up")
	}
	var err error
	n.kaH, err = netlink.NewHandleAt(n.kaNS)
	require.NoError(t, err)
	t.Cleanup(n.kaH.Close)
	n.xH, err = netlink.NewHandleAt(n.xNS)
	require.NoError(t, err)
	t.Cleanup(n.xH.Close)

	for _, side := range []struct {
		h      *netlink.Handle
		ifname string
		mac    *net.HardwareAddr
		ll     *netip.Addr
	}{{n.kaH, interopKAIf, &n.kaMAC, &n.kaLL}, {n.xH, interopXIf, &n.xMAC, &n.xLL}} {
		link, err := side.h.LinkByName(side.ifname)
		require.NoError(t, err)
		*side.mac = link.Attrs().HardwareAddr
		waitFor(t, 3*time.Second, side.ifname+"'s link-local address", func() bool {
			addrs, err := nlretry.Dump(func() ([]netlink.Addr, error) { return side.h.AddrList(link, netlink.FAMILY_V6) })
			require.NoError(t, err)
			for _, a := range addrs {
				ip, _ := netip.AddrFromSlice(a.IP)
				if ip.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
					*side.ll = ip
					return true
				}
			}
			return false
		})
	}
	return n
}

// keepalived is one keepalived process: VRRP only (-P), not respawning its
// VRRP child (-R), logging to the console.
type keepalived struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	vrrpPid int
	log     *testutil.LockedBuffer
	conf    string
	stopped atomic.Bool
}

func (n *interopNet) startKeepalived(t *testing.T, conf string) *keepalived {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "keepalived.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
	pidFile, vrrpPidFile := filepath.Join(dir, "keepalived.pid"), filepath.Join(dir, "vrrp.pid")
	k := &keepalived{log: &testutil.LockedBuffer{}, conf: conf, exited: make(chan struct{})}
	k.cmd = exec.Command("ip", "netns", "exec", n.nsKA, "keepalived",
		"-n", "-l", "-D", "-P", "-R", "-f", path, "-p", pidFile, "-r", vrrpPidFile)
	k.cmd.Stdout, k.cmd.Stderr = k.log, k.log
	require.NoError(t, k.cmd.Start())
	go func() { k.cmd.Wait(); close(k.exited) }()
	t.Cleanup(func() {
		k.stop()
		if t.Failed() {
			t.Logf("keepalived.conf:\n%skeepalived output:\n%s", conf, k.log.String())
		}
	})
	waitFor(t, 5*time.Second, "keepalived's VRRP pid file", func() bool {
		pid, err := readPid(vrrpPidFile)
		k.vrrpPid = pid
		return err == nil && pid > 0
	})
	return k
}

// stop ends keepalived as systemd would (SIGTERM to the parent), then makes
// sure its VRRP child is gone too.
func (k *keepalived) stop() {
	if k.stopped.Swap(true) {
		return
	}
	k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(5 * time.Second):
		k.cmd.Process.Kill()
		<-k.exited
	}
	killIfKeepalived(k.vrrpPid)
}

// muteConn stands in for a crashed xlb: once muted, adverts are dropped
// as if the process had died, without the priority-0 advert of Stop.
type muteConn struct {
	PacketConn
	muted atomic.Bool
}

func (c *muteConn) WriteAdvert(b []byte, dst netip.Addr) error {
	if c.muted.Load() {
		return nil
	}
	return c.PacketConn.WriteAdvert(b, dst)
}

// xlbSide is a Runner on xlb's end of the veth.
type xlbSide struct {
	r     *Runner
	conn  *muteConn
	notes chan Notify
	log   *testutil.LockedBuffer
}

func (n *interopNet) startRunner(t *testing.T, c interopCase) *xlbSide {
	t.Helper()
	x := &xlbSide{notes: make(chan Notify, 64), log: &testutil.LockedBuffer{}}
	var conn *Conn
	var garp *GARP
	var na *UnsolicitedNA
	cc := ConnConfig{IPv6: c.ipv6}
	if c.unicast {
		cc.SourceIP = c.xAddr()
		cc.Peers = []netip.Addr{c.kaAddr()}
	}
	var err error
	inNetNS(t, n.xNS, func() {
		if conn, err = New(interopXIf, cc); err != nil {
			return
		}
		if garp, err = NewGARP(interopXIf); err != nil {
			return
		}
		na, err = NewUnsolicitedNA(interopXIf)
	})
	require.NoError(t, err)
	t.Cleanup(func() { garp.Close(); na.Close() })
	x.conn = &muteConn{PacketConn: conn}

	rc := RunnerConfig{
		Instance: Config{VRID: interopVRID, Version: c.version, Priority: c.xPrio, AdverInt: c.advInt,
			NoPreempt: c.xNoPreempt, GARPMasterDelay: c.xGARPDelay},
		VIPs:     c.vips(),
		Conn:     x.conn,
		ARP:      garp,
		NA:       na,
		Addrs:    NetlinkVIPs{Handle: n.xH, Link: interopXIf},
		OnNotify: func(n Notify) { x.notes <- n },
		Logf: func(format string, args ...any) {
			t.Logf(format, args...)
			fmt.Fprintf(x.log, format+"\n", args...)
		},
	}
	if c.xAuthPass != "" {
		rc.AuthType, rc.AuthPass = AuthPass, c.xAuthPass
	}
	if c.unicast {
		rc.CheckUnicastSrc = true
		rc.Peers = []UnicastPeer{{Addr: c.kaAddr()}}
	}
	x.r, err = NewRunner(rc)
	if err != nil {
		conn.Close()
	}
	require.NoError(t, err)
	x.r.Start()
	t.Cleanup(x.r.Stop)
	waitState(t, x.notes, StateBackup, time.Second)
	return x
}

// sniffed is one captured frame with the kernel's receive time.
type sniffed struct {
	at       time.Time
	outgoing bool
	capturedPacket
}

// advert decodes a captured VRRP advert.
func (p sniffed) advert() (Advertisement, bool) {
	if !p.isVRRP() {
		return Advertisement{}, false
	}
	var a Advertisement
	return a, a.UnmarshalBinary(p.Payload) == nil
}

// announces reports whether p is a gratuitous ARP or an unsolicited
// neighbour advertisement for vip from mac.
func (p sniffed) announces(mac net.HardwareAddr, vip netip.Addr) bool {
	if !bytes.Equal(p.SrcMAC[:], mac) {
		return false
	}
	if vip.Is4() {
		return p.ARPOp == 1 && p.GratuitousARPForTarget && p.ARPTarget == vip
	}
	return p.Proto == protoICMPv6 && len(p.Payload) >= 24 && p.Payload[0] == icmp6NeighborAdv &&
		netip.AddrFrom16([16]byte(p.Payload[8:24])) == vip
}

// sniffer decodes what a testutil.Capture on one interface sees.
type sniffer struct {
	c    *testutil.Capture
	mu   sync.Mutex
	seen int       // frames of c decoded so far
	pkts []sniffed // the decoded ones
}

func startSniffer(t *testing.T, ns netns.NsHandle, ifname string) *sniffer {
	t.Helper()
	c, err := testutil.StartCapture(func(f func() error) error {
		var err error
		inNetNS(t, ns, func() { err = f() })
		return err
	}, ifname)
	require.NoError(t, err, "capture on %s", ifname)
	t.Cleanup(func() { c.Close() })
	return &sniffer{c: c}
}

// received returns the captured frames that came in from the other end.
func (s *sniffer) received() []sniffed {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.c.Frames(s.seen) {
		s.seen++
		p := sniffed{at: f.At, outgoing: f.Outgoing, capturedPacket: capturedPacket{Frame: f.Frame}}
		if p.decodeLink(linkTypeEthernet) == nil {
			s.pkts = append(s.pkts, p)
		}
	}
	var out []sniffed
	for _, p := range s.pkts {
		if !p.outgoing {
			out = append(out, p)
		}
	}
	return out
}

// adverts returns the received adverts from src, with their decoding.
func (s *sniffer) adverts(src netip.Addr) ([]sniffed, []Advertisement) {
	var ps []sniffed
	var as []Advertisement
	for _, p := range s.received() {
		if a, ok := p.advert(); ok && p.Src == src {
			ps, as = append(ps, p), append(as, a)
		}
	}
	return ps, as
}

// waitAdvert waits for an advert from src received after since that
// matches (nil: any) and returns it.
func (s *sniffer) waitAdvert(t *testing.T, src netip.Addr, since time.Time, within time.Duration, match func(Advertisement) bool) (sniffed, Advertisement) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ps, as := s.adverts(src)
		for i := range ps {
			if ps[i].at.After(since) && (match == nil || match(as[i])) {
				return ps[i], as[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no advert from %s captured within %v", src, within)
		}
		time.Sleep(time.Millisecond)
	}
}

// lastAdvertBefore is the last advert from src received before t.
func (s *sniffer) lastAdvertBefore(src netip.Addr, t time.Time) (sniffed, bool) {
	ps, _ := s.adverts(src)
	for i := len(ps) - 1; i >= 0; i-- {
		if ps[i].at.Before(t) {
			return ps[i], true
		}
	}
	return sniffed{}, false
}

// announcements returns the gratuitous ARPs / unsolicited NAs for vip from
// mac received in [from, to).
func (s *sniffer) announcements(mac net.HardwareAddr, vip netip.Addr, from, to time.Time) []sniffed {
	var out []sniffed
	for _, p := range s.received() {
		if p.announces(mac, vip) && !p.at.Before(from) && p.at.Before(to) {
			out = append(out, p)
		}
	}
	return out
}
