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
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Interop with a real keepalived: it runs in one network namespace, the xlb
// Runner in another, on the two ends of a veth pair.

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func interopPrereqs(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("interop test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("interop test needs root (network namespaces, raw sockets)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("interop test needs iproute2's ip: package iproute2 is missing")
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("interop test needs keepalived: package keepalived is missing (install it to run this test)")
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

func hasAddr(t *testing.T, h *netlink.Handle, ifname string, want netip.Addr) bool {
	t.Helper()
	link, err := h.LinkByName(ifname)
	require.NoError(t, err)
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	require.NoError(t, err)
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip == want {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
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

// interopCase parameterises one keepalived/Runner pair.
type interopCase struct {
	name       string
	version    uint8         // 2 or 3
	unicast    bool          // unicast_src_ip/unicast_peer on both sides
	advInt     time.Duration // advert_int on both sides
	kaPrio     uint8         // keepalived's priority
	xPrio      uint8         // the Runner's priority
	xNoPreempt bool          // the Runner is nopreempt
	kaAuthPass string        // v2: auth_type PASS with this auth_pass on keepalived
	xAuthPass  string        // v2: AuthPass with this password on the Runner
}

// interopEnv is a running keepalived and Runner on the two ends of a veth.
type interopEnv struct {
	c         interopCase
	nsKA, nsX string
	kaH, xH   *netlink.Handle
	vrrpPid   int
	r         *Runner
	notes     chan Notify
	kaLog     *lockedBuffer // keepalived's console log
	xLog      *lockedBuffer // the Runner's Logf output
}

const (
	interopKAIf, interopXIf = "vka", "vxlb"
	interopVRID             = 51
)

var (
	interopKAIP = netip.MustParseAddr("10.99.0.1")
	interopXIP  = netip.MustParseAddr("10.99.0.2")
	interopVIP  = netip.MustParsePrefix("10.99.0.100/24")
)

// keepalivedConf is keepalived.conf for c.
func keepalivedConf(c interopCase) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id xlb_interop\n}\n")
	fmt.Fprintf(&b, "vrrp_instance VI_XLB {\n")
	fmt.Fprintf(&b, "    state BACKUP\n")
	fmt.Fprintf(&b, "    interface %s\n", interopKAIf)
	fmt.Fprintf(&b, "    version %d\n", c.version)
	fmt.Fprintf(&b, "    virtual_router_id %d\n", interopVRID)
	fmt.Fprintf(&b, "    priority %d\n", c.kaPrio)
	fmt.Fprintf(&b, "    advert_int %s\n", strconv.FormatFloat(c.advInt.Seconds(), 'f', -1, 64))
	if c.kaAuthPass != "" {
		fmt.Fprintf(&b, "    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n", c.kaAuthPass)
	}
	if c.unicast {
		fmt.Fprintf(&b, "    unicast_src_ip %s\n", interopKAIP)
		fmt.Fprintf(&b, "    unicast_peer {\n        %s\n    }\n", interopXIP)
	}
	fmt.Fprintf(&b, "    virtual_ipaddress {\n        %s\n    }\n}\n", interopVIP)
	return b.String()
}

// nsHasAddr reports whether `ip -n ns -o addr show` lists addr.
func nsHasAddr(t *testing.T, ns string, addr netip.Addr) bool {
	t.Helper()
	out := runCmd(t, "ip", "-n", ns, "-o", "addr", "show")
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr() == addr {
			return true
		}
	}
	return false
}

// startInterop builds two namespaces joined by a veth, starts keepalived in
// one (VRRP only, -P -R, not respawning its VRRP child), waits for it to be
// MASTER, then starts a Runner in the other and waits for it to be BACKUP.
// Everything is torn down in t.Cleanup.
func startInterop(t *testing.T, c interopCase) *interopEnv {
	t.Helper()
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	e := &interopEnv{c: c, nsKA: "xlbka-" + suffix, nsX: "xlbx-" + suffix, notes: make(chan Notify, 32), xLog: &lockedBuffer{}}
	kaNS := newNetNS(t, e.nsKA)
	xNS := newNetNS(t, e.nsX)

	runCmd(t, "ip", "-n", e.nsKA, "link", "add", interopKAIf, "type", "veth", "peer", "name", interopXIf, "netns", e.nsX)
	runCmd(t, "ip", "-n", e.nsKA, "addr", "add", interopKAIP.String()+"/24", "dev", interopKAIf)
	runCmd(t, "ip", "-n", e.nsX, "addr", "add", interopXIP.String()+"/24", "dev", interopXIf)
	for _, l := range [][]string{{e.nsKA, interopKAIf}, {e.nsKA, "lo"}, {e.nsX, interopXIf}, {e.nsX, "lo"}} {
		runCmd(t, "ip", "-n", l[0], "link", "set", l[1], "up")
	}
	var err error
	e.kaH, err = netlink.NewHandleAt(kaNS)
	require.NoError(t, err)
	t.Cleanup(e.kaH.Close)
	e.xH, err = netlink.NewHandleAt(xNS)
	require.NoError(t, err)
	t.Cleanup(e.xH.Close)

	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	require.NoError(t, os.WriteFile(conf, []byte(keepalivedConf(c)), 0o644))
	pidFile, vrrpPidFile := filepath.Join(dir, "keepalived.pid"), filepath.Join(dir, "vrrp.pid")
	kaLog := &lockedBuffer{}
	e.kaLog = kaLog
	ka := exec.Command("ip", "netns", "exec", e.nsKA, "keepalived",
		"-n", "-l", "-D", "-P", "-R", "-f", conf, "-p", pidFile, "-r", vrrpPidFile)
	ka.Stdout, ka.Stderr = kaLog, kaLog
	require.NoError(t, ka.Start())
	kaExited := make(chan struct{})
	go func() { ka.Wait(); close(kaExited) }()
	t.Cleanup(func() {
		vpid, _ := readPid(vrrpPidFile)
		ka.Process.Signal(syscall.SIGTERM)
		select {
		case <-kaExited:
		case <-time.After(5 * time.Second):
			ka.Process.Kill()
			<-kaExited
		}
		if vpid > 0 {
			killIfKeepalived(vpid)
		}
		if t.Failed() {
			t.Logf("keepalived.conf:\n%skeepalived output:\n%s", keepalivedConf(c), kaLog.String())
		}
	})

	waitFor(t, 5*time.Second, "keepalived's VRRP pid file", func() bool {
		e.vrrpPid, err = readPid(vrrpPidFile)
		return err == nil && e.vrrpPid > 0
	})
	// Alone, keepalived is master after its down interval (~3.6 s at most
	// for v2).
	kaDown := MasterDownInterval(c.version, c.kaPrio, c.advInt, DefaultDownTimerAdverts)
	waitFor(t, kaDown+5*time.Second, "keepalived to become MASTER (VIP on its interface)", func() bool {
		return hasAddr(t, e.kaH, interopKAIf, interopVIP.Addr())
	})

	var conn *Conn
	var garp *GARP
	var cc ConnConfig
	if c.unicast {
		cc.SourceIP = interopXIP
		cc.Peers = []netip.Addr{interopKAIP}
	}
	inNetNS(t, xNS, func() {
		conn, err = New(interopXIf, cc)
		if err == nil {
			garp, err = NewGARP(interopXIf)
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { garp.Close() })
	require.Equal(t, interopXIP, conn.Source())

	rc := RunnerConfig{
		Instance: Config{VRID: interopVRID, Version: c.version, Priority: c.xPrio, AdverInt: c.advInt, NoPreempt: c.xNoPreempt},
		VIPs:     []netip.Prefix{interopVIP},
		Conn:     conn,
		ARP:      garp,
		Addrs:    NetlinkVIPs{Handle: e.xH, Link: interopXIf},
		OnNotify: func(n Notify) { e.notes <- n },
		Logf: func(format string, args ...any) {
			t.Logf(format, args...)
			fmt.Fprintf(e.xLog, format+"\n", args...)
		},
	}
	if c.xAuthPass != "" {
		rc.AuthType, rc.AuthPass = AuthPass, c.xAuthPass
	}
	if c.unicast {
		rc.CheckUnicastSrc = true
		rc.Peers = []UnicastPeer{{Addr: interopKAIP}}
	}
	e.r, err = NewRunner(rc)
	if err != nil {
		conn.Close()
	}
	require.NoError(t, err)
	e.r.Start()
	t.Cleanup(e.r.Stop)
	waitState(t, e.notes, StateBackup, time.Second)
	return e
}

// xDownInterval is the Runner's Master_Down_Interval.
func (e *interopEnv) xDownInterval() time.Duration {
	return MasterDownInterval(e.c.version, e.c.xPrio, e.c.advInt, DefaultDownTimerAdverts)
}

// stayBackup checks the Runner stays BACKUP, without the VIP, for d.
func (e *interopEnv) stayBackup(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case n := <-e.notes:
		t.Fatalf("runner left BACKUP while keepalived is master: %v", n.State)
	case <-time.After(d):
	}
	require.Equal(t, StateBackup, e.r.State())
	require.Zero(t, e.r.Dropped(), "keepalived's adverts must validate")
	require.False(t, hasAddr(t, e.xH, interopXIf, interopVIP.Addr()))
}

// Failover: keepalived, at the higher priority, is master; the Runner stays
// backup until keepalived's VRRP process dies without a priority-0 advert,
// then takes over within its Master_Down_Interval.
func testInteropFailover(t *testing.T, e *interopEnv) {
	downInt := e.xDownInterval()
	e.stayBackup(t, downInt+time.Second)

	require.NoError(t, syscall.Kill(e.vrrpPid, syscall.SIGKILL))
	killed := time.Now()
	waitState(t, e.notes, StateMaster, downInt+500*time.Millisecond)
	t.Logf("runner became MASTER %v after keepalived was killed (Master_Down_Interval %v)", time.Since(killed), downInt)
	require.Equal(t, StateMaster, e.r.State())
	require.True(t, hasAddr(t, e.xH, interopXIf, interopVIP.Addr()), "VIP on the runner's interface")
	require.True(t, nsHasAddr(t, e.nsX, interopVIP.Addr()))

	// Stop sends priority 0 and removes the VIP.
	e.r.Stop()
	require.False(t, hasAddr(t, e.xH, interopXIf, interopVIP.Addr()))
}

// Preemption: the Runner, at the higher priority, ignores keepalived's
// adverts, becomes master after its down interval, and keepalived yields.
func testInteropPreempt(t *testing.T, e *interopEnv) {
	downInt := e.xDownInterval()
	waitState(t, e.notes, StateMaster, downInt+500*time.Millisecond)
	waitFor(t, 3*time.Second, "keepalived to yield (VIP gone from its namespace)", func() bool {
		return !nsHasAddr(t, e.nsKA, interopVIP.Addr())
	})
	// It stays that way: keepalived does not take the VIP back.
	time.Sleep(2 * e.c.advInt)
	require.Equal(t, StateMaster, e.r.State())
	require.True(t, nsHasAddr(t, e.nsX, interopVIP.Addr()), "VIP on the runner's side")
	require.False(t, nsHasAddr(t, e.nsKA, interopVIP.Addr()), "VIP not on keepalived's side")
	require.Zero(t, e.r.Dropped(), "keepalived's adverts must validate")
	select {
	case n := <-e.notes:
		t.Fatalf("runner left MASTER: %v", n.State)
	default:
	}
}

// nopreempt: the Runner, at the higher priority but nopreempt, accepts the
// lower-priority master keepalived already is.
func testInteropNoPreempt(t *testing.T, e *interopEnv) {
	e.stayBackup(t, 4*time.Second)
	require.True(t, nsHasAddr(t, e.nsKA, interopVIP.Addr()), "VIP still on keepalived's side")
	require.False(t, nsHasAddr(t, e.nsX, interopVIP.Addr()))
}

// Clean stop: the Runner, at the higher priority, is master; Stop sends a
// priority-0 advert, and keepalived takes over after its Skew_Time rather than
// its full Master_Down_Interval.
func testInteropCleanStop(t *testing.T, e *interopEnv) {
	waitState(t, e.notes, StateMaster, e.xDownInterval()+500*time.Millisecond)
	waitFor(t, 3*time.Second, "keepalived to yield (VIP gone from its namespace)", func() bool {
		return !nsHasAddr(t, e.nsKA, interopVIP.Addr())
	})
	time.Sleep(2 * e.c.advInt) // keepalived settles in BACKUP
	require.Equal(t, StateMaster, e.r.State())

	e.r.Stop()
	stopped := time.Now()
	within := SkewTime(e.c.version, e.c.kaPrio, e.c.advInt) + 500*time.Millisecond
	for !nsHasAddr(t, e.nsKA, interopVIP.Addr()) {
		if time.Since(stopped) > within {
			t.Fatalf("keepalived not MASTER (VIP on its interface) within %v of Stop", within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("keepalived became MASTER %v after Stop returned (bound %v)", time.Since(stopped), within)
	require.False(t, nsHasAddr(t, e.nsX, interopVIP.Addr()), "VIP gone from the runner's side")
}

// Wrong auth_pass: each side drops the other's adverts, so both end up
// master. The Runner, at the higher priority, would not yield anyway, so
// its side is checked by its Dropped count while it is BACKUP; keepalived
// would yield to it if it accepted its adverts. (keepalived 2.2.7 as master
// stops sending adverts while it receives ones with a bad password, so
// Dropped need not grow once both are master.)
func testInteropAuthMismatch(t *testing.T, e *interopEnv) {
	dropped := e.r.Dropped()
	waitState(t, e.notes, StateMaster, e.xDownInterval()+500*time.Millisecond)
	require.Greater(t, e.r.Dropped(), dropped, "the runner drops keepalived's adverts")
	require.Contains(t, e.xLog.String(), ErrAuthPass.Error())
	time.Sleep(2 * e.c.advInt)
	require.Equal(t, StateMaster, e.r.State())
	require.True(t, nsHasAddr(t, e.nsX, interopVIP.Addr()), "VIP on the runner's side")
	require.True(t, nsHasAddr(t, e.nsKA, interopVIP.Addr()), "VIP still on keepalived's side")
	require.Contains(t, e.kaLog.String(), "received an invalid passwd", "keepalived drops the runner's adverts")
}

func TestInteropKeepalived(t *testing.T) {
	interopPrereqs(t)
	for _, tc := range []struct {
		interopCase
		run func(*testing.T, *interopEnv)
	}{
		{interopCase{name: "v2-multicast-failover", version: Version2, advInt: time.Second, kaPrio: 200, xPrio: 100}, testInteropFailover},
		{interopCase{name: "v3-multicast-failover", version: Version3, advInt: 100 * time.Millisecond, kaPrio: 200, xPrio: 100}, testInteropFailover},
		{interopCase{name: "v2-unicast-failover", version: Version2, unicast: true, advInt: time.Second, kaPrio: 200, xPrio: 100}, testInteropFailover},
		{interopCase{name: "v2-preempt", version: Version2, advInt: time.Second, kaPrio: 100, xPrio: 200}, testInteropPreempt},
		{interopCase{name: "v3-unicast-preempt", version: Version3, unicast: true, advInt: 100 * time.Millisecond, kaPrio: 100, xPrio: 200}, testInteropPreempt},
		{interopCase{name: "v2-nopreempt", version: Version2, advInt: time.Second, kaPrio: 100, xPrio: 200, xNoPreempt: true}, testInteropNoPreempt},
		{interopCase{name: "v3-clean-stop", version: Version3, advInt: 100 * time.Millisecond, kaPrio: 100, xPrio: 200}, testInteropCleanStop},
		{interopCase{name: "v2-auth-mismatch", version: Version2, advInt: time.Second, kaPrio: 100, xPrio: 200, kaAuthPass: "kapass", xAuthPass: "xlbpass"}, testInteropAuthMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, startInterop(t, tc.interopCase))
		})
	}
}

// TestConnVeth sends an advert from one Conn to another across a veth
// pair and checks what the receiver learns from the IP header. Root only.
func TestConnVeth(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, raw sockets)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip: package iproute2 is missing")
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	nsA, nsB := "xlbca-"+suffix, "xlbcb-"+suffix
	hA, hB := newNetNS(t, nsA), newNetNS(t, nsB)
	runCmd(t, "ip", "-n", nsA, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", nsB)
	runCmd(t, "ip", "-n", nsA, "addr", "add", "10.99.1.1/24", "dev", "va")
	runCmd(t, "ip", "-n", nsB, "addr", "add", "10.99.1.2/24", "dev", "vb")
	runCmd(t, "ip", "-n", nsA, "link", "set", "va", "up")
	runCmd(t, "ip", "-n", nsB, "link", "set", "vb", "up")

	var a, b, bu *Conn
	var err error
	inNetNS(t, hA, func() { a, err = New("va", ConnConfig{}) })
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	inNetNS(t, hB, func() {
		b, err = New("vb", ConnConfig{})
		if err == nil {
			bu, err = New("vb", ConnConfig{Peers: []netip.Addr{netip.MustParseAddr("10.99.1.1")}})
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close(); bu.Close() })

	vips := []netip.Addr{netip.MustParseAddr("10.99.1.100")}
	adv := Advertisement{Version: Version3, Type: TypeAdvertisement, VRID: 9, Priority: 150, AdverInt: 100, Addresses: vips}
	require.NoError(t, adv.SetChecksum(a.Source(), MulticastGroup4, false))
	msg, err := adv.MarshalBinary()
	require.NoError(t, err)

	// Multicast, a to b.
	require.NoError(t, a.SetReadDeadline(time.Now().Add(3*time.Second)))
	require.NoError(t, b.SetReadDeadline(time.Now().Add(3*time.Second)))
	require.NoError(t, a.WriteAdvert(msg, MulticastGroup4))
	buf := make([]byte, 1500)
	payload, info, err := b.ReadAdvert(buf)
	require.NoError(t, err)
	require.Equal(t, PacketInfo{Src: netip.MustParseAddr("10.99.1.1"), Dst: MulticastGroup4, TTL: 255, PayloadLen: len(msg)}, info)
	got, err := Validate(payload, info, Local{Version: Version3, VRID: 9, VIPs: vips})
	require.NoError(t, err)
	require.Equal(t, uint8(150), got.Priority)

	// Unicast, b to a: the TTL is 255 too.
	require.Equal(t, []netip.Addr{netip.MustParseAddr("10.99.1.1")}, bu.Destinations())
	adv.Priority = 90
	require.NoError(t, adv.SetChecksum(bu.Source(), netip.MustParseAddr("10.99.1.1"), false))
	msg, err = adv.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, bu.WriteAdvert(msg, netip.MustParseAddr("10.99.1.1")))
	payload, info, err = a.ReadAdvert(buf)
	require.NoError(t, err)
	require.Equal(t, PacketInfo{Src: netip.MustParseAddr("10.99.1.2"), Dst: netip.MustParseAddr("10.99.1.1"), TTL: 255, PayloadLen: len(msg)}, info)
	got, err = Validate(payload, info, Local{Version: Version3, VRID: 9, VIPs: vips, Unicast: true})
	require.NoError(t, err)
	require.Equal(t, uint8(90), got.Priority)

	// Close unblocks a reader with net.ErrClosed.
	require.NoError(t, b.SetReadDeadline(time.Time{}))
	errc := make(chan error, 1)
	go func() { _, _, err := b.ReadAdvert(buf); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	b.Close()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(2 * time.Second):
		t.Fatal("ReadAdvert did not return after Close")
	}
}
