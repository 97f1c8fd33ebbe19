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

const keepalivedConf = `global_defs {
    router_id xlb_interop
}
vrrp_instance VI_XLB {
    state BACKUP
    interface %s
    virtual_router_id %d
    priority 200
    advert_int 1
    virtual_ipaddress {
        %s
    }
}
`

func TestInteropKeepalived(t *testing.T) {
	interopPrereqs(t)

	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	nsKA, nsX := "xlbka-"+suffix, "xlbx-"+suffix
	kaNS := newNetNS(t, nsKA)
	xNS := newNetNS(t, nsX)
	_ = kaNS

	const kaIf, xIf = "vka", "vxlb"
	const vrid = 51
	vip := netip.MustParsePrefix("10.99.0.100/24")
	runCmd(t, "ip", "-n", nsKA, "link", "add", kaIf, "type", "veth", "peer", "name", xIf, "netns", nsX)
	runCmd(t, "ip", "-n", nsKA, "addr", "add", "10.99.0.1/24", "dev", kaIf)
	runCmd(t, "ip", "-n", nsX, "addr", "add", "10.99.0.2/24", "dev", xIf)
	for _, c := range [][]string{{nsKA, kaIf}, {nsKA, "lo"}, {nsX, xIf}, {nsX, "lo"}} {
		runCmd(t, "ip", "-n", c[0], "link", "set", c[1], "up")
	}
	kaH, err := netlink.NewHandleAt(kaNS)
	require.NoError(t, err)
	t.Cleanup(kaH.Close)
	xH, err := netlink.NewHandleAt(xNS)
	require.NoError(t, err)
	t.Cleanup(xH.Close)

	// keepalived, VRRP subsystem only, not respawning its VRRP child.
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, keepalivedConf, kaIf, vrid, vip), 0o644))
	pidFile, vrrpPidFile := filepath.Join(dir, "keepalived.pid"), filepath.Join(dir, "vrrp.pid")
	kaLog := &lockedBuffer{}
	ka := exec.Command("ip", "netns", "exec", nsKA, "keepalived",
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
			t.Logf("keepalived output:\n%s", kaLog.String())
		}
	})

	var vrrpPid int
	waitFor(t, 5*time.Second, "keepalived's VRRP pid file", func() bool {
		vrrpPid, err = readPid(vrrpPidFile)
		return err == nil && vrrpPid > 0
	})
	// keepalived at priority 200 is master after its down interval, ~3.2 s.
	waitFor(t, 8*time.Second, "keepalived to become MASTER (VIP on its interface)", func() bool {
		return hasAddr(t, kaH, kaIf, vip.Addr())
	})

	// The xlb Runner at priority 100.
	var conn *Conn
	var garp *GARP
	inNetNS(t, xNS, func() {
		conn, err = New(xIf, ConnConfig{})
		if err == nil {
			garp, err = NewGARP(xIf)
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { garp.Close() })
	require.Equal(t, netip.MustParseAddr("10.99.0.2"), conn.Source())

	notes := make(chan Notify, 32)
	r, err := NewRunner(RunnerConfig{
		Instance: Config{VRID: vrid, Priority: 100, AdverInt: time.Second},
		VIPs:     []netip.Prefix{vip},
		Conn:     conn,
		ARP:      garp,
		Addrs:    NetlinkVIPs{Handle: xH, Link: xIf},
		OnNotify: func(n Notify) { notes <- n },
		Logf:     t.Logf,
	})
	require.NoError(t, err)
	r.Start()
	t.Cleanup(r.Stop)

	waitState(t, notes, StateBackup, time.Second)
	// Hearing keepalived's adverts keeps it BACKUP past its own
	// Master_Down_Interval.
	downInt := MasterDownInterval(Version2, 100, time.Second, DefaultDownTimerAdverts)
	select {
	case n := <-notes:
		t.Fatalf("runner left BACKUP while keepalived is master: %v", n.State)
	case <-time.After(downInt + time.Second):
	}
	require.Equal(t, StateBackup, r.State())
	require.Zero(t, r.Dropped(), "keepalived's adverts must validate")
	require.False(t, hasAddr(t, xH, xIf, vip.Addr()))

	// keepalived's VRRP process dies without a priority-0 advert.
	require.NoError(t, syscall.Kill(vrrpPid, syscall.SIGKILL))
	killed := time.Now()
	waitState(t, notes, StateMaster, downInt+500*time.Millisecond)
	took := time.Since(killed)
	t.Logf("runner became MASTER %v after keepalived was killed (Master_Down_Interval %v)", took, downInt)
	require.Equal(t, StateMaster, r.State())
	require.True(t, hasAddr(t, xH, xIf, vip.Addr()), "VIP on the runner's interface")

	// Stop sends priority 0 and removes the VIP.
	r.Stop()
	require.False(t, hasAddr(t, xH, xIf, vip.Addr()))
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
