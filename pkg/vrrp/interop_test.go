package vrrp

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Interop with a real keepalived (interop_harness_test.go has the
// namespaces, processes and captures).

// interopCase parameterises one keepalived/Runner pair.
type interopCase struct {
	name       string
	version    uint8         // 2 or 3
	ipv6       bool          // IPv6 VIPs: VRRPv3 over ff02::12, or IPv6 unicast
	unicast    bool          // unicast_src_ip/unicast_peer on both sides
	advInt     time.Duration // advert_int on both sides
	kaPrio     uint8         // keepalived's priority
	xPrio      uint8         // the Runner's priority
	xNoPreempt bool          // the Runner is nopreempt
	kaAuthPass string        // v2: auth_type PASS with this auth_pass on keepalived
	xAuthPass  string        // v2: AuthPass with this password on the Runner
	// kaTrackFile gives keepalived a vrrp_script, weight -60, interval 1,
	// rise 1, fall 1, that fails once this file is gone.
	kaTrackFile string
	// xGARPDelay is the Runner's garp_master_delay; zero is keepalived's
	// default, 5 s.
	xGARPDelay time.Duration
}

func (c interopCase) vips() []netip.Prefix {
	if c.ipv6 {
		return interopVIPs6
	}
	return []netip.Prefix{interopVIP}
}

// kaAddr and xAddr are the unicast addresses of the two ends.
func (c interopCase) kaAddr() netip.Addr {
	if c.ipv6 {
		return interopKAIP6
	}
	return interopKAIP
}

func (c interopCase) xAddr() netip.Addr {
	if c.ipv6 {
		return interopXIP6
	}
	return interopXIP
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// keepalivedConf is keepalived.conf for c.
func keepalivedConf(c interopCase) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id xlb_interop\n}\n")
	if c.kaTrackFile != "" {
		// A script of its own, not /usr/bin/test: keepalived runs a
		// script by its real path as argv[0], and in the VM guest that is
		// busybox, which does not know itself as test then.
		fmt.Fprintf(&b, "vrrp_script chk_xlb {\n    script \"%s\"\n", filepath.Join(filepath.Dir(c.kaTrackFile), "chk.sh"))
		fmt.Fprintf(&b, "    interval 1\n    fall 1\n    rise 1\n    weight -60\n}\n")
	}
	fmt.Fprintf(&b, "vrrp_instance VI_XLB {\n")
	fmt.Fprintf(&b, "    state BACKUP\n")
	fmt.Fprintf(&b, "    interface %s\n", interopKAIf)
	fmt.Fprintf(&b, "    version %d\n", c.version)
	fmt.Fprintf(&b, "    virtual_router_id %d\n", interopVRID)
	fmt.Fprintf(&b, "    priority %d\n", c.kaPrio)
	fmt.Fprintf(&b, "    advert_int %s\n", seconds(c.advInt))
	if c.kaAuthPass != "" {
		fmt.Fprintf(&b, "    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n", c.kaAuthPass)
	}
	if c.unicast {
		fmt.Fprintf(&b, "    unicast_src_ip %s\n", c.kaAddr())
		fmt.Fprintf(&b, "    unicast_peer {\n        %s\n    }\n", c.xAddr())
	}
	fmt.Fprintf(&b, "    virtual_ipaddress {\n")
	for _, v := range c.vips() {
		fmt.Fprintf(&b, "        %s\n", v)
	}
	fmt.Fprintf(&b, "    }\n")
	if c.kaTrackFile != "" {
		fmt.Fprintf(&b, "    track_script {\n        chk_xlb\n    }\n")
	}
	fmt.Fprintf(&b, "}\n")
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

// interopEnv is a running keepalived and Runner on the two ends of a veth.
type interopEnv struct {
	*interopNet
	c  interopCase
	ka *keepalived
	x  *xlbSide
	// kaSrc and xSrc are where each side's adverts come from.
	kaSrc, xSrc netip.Addr
	// kaVIPs are the VIPs as keepalived configured them, flags included.
	kaVIPs []netlink.Addr
}

// vip is the first VIP, the one whose presence means MASTER.
func (e *interopEnv) vip() netip.Addr { return e.c.vips()[0].Addr() }

// startInterop starts keepalived, waits for it to be MASTER alone, then
// starts a Runner and waits for it to be BACKUP. Everything is torn down in
// t.Cleanup.
func startInterop(t *testing.T, c interopCase) *interopEnv {
	t.Helper()
	e := &interopEnv{interopNet: newInteropNet(t), c: c}
	e.kaSrc = interopKAIP
	switch {
	case c.unicast:
		e.kaSrc = c.kaAddr()
	case c.ipv6:
		e.kaSrc = e.kaLL
	}
	e.ka = e.startKeepalived(t, keepalivedConf(c))
	// Alone, keepalived is master after its down interval (~3.6 s at most
	// for v2).
	kaDown := MasterDownInterval(c.version, c.kaPrio, c.advInt, DefaultDownTimerAdverts)
	// keepalived adds its VIPs one after the other: wait for all of them.
	waitFor(t, kaDown+5*time.Second, "keepalived to become MASTER (VIPs on its interface)", func() bool {
		for _, v := range c.vips() {
			if !hasAddr(t, e.kaH, interopKAIf, v.Addr()) {
				return false
			}
		}
		return true
	})
	for _, v := range c.vips() {
		a, ok, err := findAddr(e.kaH, interopKAIf, v.Addr())
		require.NoError(t, err)
		require.True(t, ok, "keepalived's VIP %s", v)
		e.kaVIPs = append(e.kaVIPs, a)
	}
	e.x = e.startRunner(t, c)
	e.xSrc = e.x.conn.Source()
	if c.ipv6 && !c.unicast {
		require.Equal(t, e.xLL, e.xSrc, "IPv6 adverts come from the link-local address")
	}
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
	case n := <-e.x.notes:
		t.Fatalf("runner left BACKUP while keepalived is master: %v", n.State)
	case <-time.After(d):
	}
	require.Equal(t, StateBackup, e.x.r.State())
	require.Zero(t, e.x.r.Dropped(), "keepalived's adverts must validate")
	require.False(t, hasAddr(t, e.xH, interopXIf, e.vip()))
}

// announcementBatch counts, per VIP, the gratuitous ARPs / unsolicited NAs
// capture s holds from mac in the 300 ms after the advert at start, and
// checks none came between since and that advert: keepalived advertises
// first, then announces.
func (e *interopEnv) announcementBatch(t *testing.T, s *sniffer, mac []byte, since, start time.Time) []int {
	t.Helper()
	var counts []int
	for _, v := range e.c.vips() {
		assert.Empty(t, s.announcements(mac, v.Addr(), since, start), "announcements for %s before the first advert as master", v)
		counts = append(counts, len(s.announcements(mac, v.Addr(), start, start.Add(300*time.Millisecond))))
	}
	return counts
}

// checkAnnouncements checks that the Runner, which became master after
// since, announced its VIPs in keepalived's capture as keepalived announced
// them in the Runner's when it became master: garp_master_repeat (5)
// gratuitous ARPs or unsolicited NAs per VIP right after the first advert,
// and, when the Runner's garp_master_delay is short enough to wait for, as
// many again after it. keepalived's NAs are compared byte for byte with
// NAFrame.
func (e *interopEnv) checkAnnouncements(t *testing.T, since time.Time) {
	t.Helper()
	kaAdverts, _ := e.sniffX.adverts(e.kaSrc)
	require.NotEmpty(t, kaAdverts, "keepalived's adverts in the runner's capture")
	kaCounts := e.announcementBatch(t, e.sniffX, e.kaMAC, time.Time{}, kaAdverts[0].at)

	first, _ := e.sniffKA.waitAdvert(t, e.xSrc, since, 2*time.Second,
		func(a Advertisement) bool { return a.Priority == e.c.xPrio })
	time.Sleep(time.Until(first.at.Add(300 * time.Millisecond)))
	xCounts := e.announcementBatch(t, e.sniffKA, e.xMAC, since, first.at)

	want := make([]int, len(e.c.vips()))
	for i := range want {
		want[i] = DefaultGARPMasterRepeat
	}
	require.Equal(t, want, kaCounts, "keepalived's first batch per VIP (garp_master_repeat)")
	require.Equal(t, kaCounts, xCounts, "the runner's first batch per VIP, as keepalived's")
	kind := "gratuitous ARPs"
	if e.c.ipv6 {
		kind = "unsolicited NAs"
		for _, v := range e.c.vips() {
			for _, p := range e.sniffX.announcements(e.kaMAC, v.Addr(), time.Time{}, time.Now()) {
				frame, err := NAFrame(e.kaMAC, v.Addr(), false)
				require.NoError(t, err)
				require.Equal(t, frame, p.Frame, "NAFrame builds keepalived's NA for %s", v)
			}
		}
	}
	t.Logf("announcements: keepalived %v and runner %v %s per VIP, the runner's %v after its first advert as master",
		kaCounts, xCounts, kind, e.sniffKA.announcements(e.xMAC, e.vip(), first.at, time.Now())[0].at.Sub(first.at))

	if d := e.c.xGARPDelay; d > 0 && d <= 2*time.Second {
		time.Sleep(time.Until(first.at.Add(d + 300*time.Millisecond)))
		for i, v := range e.c.vips() {
			late := e.sniffKA.announcements(e.xMAC, v.Addr(), first.at.Add(300*time.Millisecond), time.Now())
			require.Len(t, late, want[i], "second batch for %s after garp_master_delay %v", v, d)
			assert.InDelta(t, d.Seconds(), late[0].at.Sub(first.at).Seconds(), garpDelayTolerance,
				"second batch %v after the first advert", late[0].at.Sub(first.at))
		}
	}
}

// Failover: keepalived, at the higher priority, is master; the Runner stays
// backup until keepalived's VRRP process dies without a priority-0 advert,
// then takes over within its Master_Down_Interval and announces the VIPs.
func testInteropFailover(t *testing.T, e *interopEnv) {
	downInt := e.xDownInterval()
	e.stayBackup(t, downInt+time.Second)

	killed := time.Now()
	require.NoError(t, syscall.Kill(e.ka.vrrpPid, syscall.SIGKILL))
	waitState(t, e.x.notes, StateMaster, downInt+500*time.Millisecond)
	t.Logf("runner became MASTER %v after keepalived was killed (Master_Down_Interval %v)", time.Since(killed), downInt)
	require.Equal(t, StateMaster, e.x.r.State())
	for _, v := range e.c.vips() {
		require.True(t, hasAddr(t, e.xH, interopXIf, v.Addr()), "VIP %s on the runner's interface", v)
		require.True(t, nsHasAddr(t, e.nsX, v.Addr()))
	}
	e.checkAnnouncements(t, killed)

	// Stop sends priority 0 and removes the VIPs.
	e.x.r.Stop()
	for _, v := range e.c.vips() {
		require.False(t, hasAddr(t, e.xH, interopXIf, v.Addr()))
	}
}

// Preemption: the Runner, at the higher priority, ignores keepalived's
// adverts, becomes master after its down interval, and keepalived yields:
// it accepts the Runner's adverts without complaint.
func testInteropPreempt(t *testing.T, e *interopEnv) {
	downInt := e.xDownInterval()
	waitState(t, e.x.notes, StateMaster, downInt+500*time.Millisecond)
	waitFor(t, 3*time.Second, "keepalived to yield (VIP gone from its namespace)", func() bool {
		return !nsHasAddr(t, e.nsKA, e.vip())
	})
	// It stays that way: keepalived does not take the VIP back.
	time.Sleep(max(2*e.c.advInt, 500*time.Millisecond))
	require.Equal(t, StateMaster, e.x.r.State())
	require.True(t, nsHasAddr(t, e.nsX, e.vip()), "VIP on the runner's side")
	require.False(t, nsHasAddr(t, e.nsKA, e.vip()), "VIP not on keepalived's side")
	require.Zero(t, e.x.r.Dropped(), "keepalived's adverts must validate")
	require.NotContains(t, strings.ToLower(e.ka.log.String()), "invalid", "keepalived rejected none of the runner's adverts")
	select {
	case n := <-e.x.notes:
		t.Fatalf("runner left MASTER: %v", n.State)
	default:
	}
	if e.c.ipv6 {
		// IPv6 VIPs carry keepalived's flags: nodad, and deprecated for a /128.
		const flags = unix.IFA_F_NODAD | unix.IFA_F_DEPRECATED
		for i, v := range e.c.vips() {
			a, ok, err := findAddr(e.xH, interopXIf, v.Addr())
			require.NoError(t, err)
			require.True(t, ok, "VIP %s on the runner's side", v)
			assert.Equal(t, e.kaVIPs[i].Flags&flags, a.Flags&flags, "flags of %s: keepalived 0x%x, runner 0x%x", v, e.kaVIPs[i].Flags, a.Flags)
			assert.Equal(t, e.kaVIPs[i].PreferedLft, a.PreferedLft, "preferred_lft of %s", v)
			t.Logf("VIP %s: flags keepalived 0x%x, runner 0x%x; preferred_lft %d, %d", v, e.kaVIPs[i].Flags, a.Flags, e.kaVIPs[i].PreferedLft, a.PreferedLft)
		}
	}
	if e.c.unicast && e.c.ipv6 {
		ps, _ := e.sniffX.adverts(e.kaSrc)
		require.NotEmpty(t, ps)
		t.Logf("keepalived's unicast IPv6 adverts arrive with hop limit %d", ps[len(ps)-1].TTL)
	}
}

// nopreempt: the Runner, at the higher priority but nopreempt, accepts the
// lower-priority master keepalived already is.
func testInteropNoPreempt(t *testing.T, e *interopEnv) {
	e.stayBackup(t, 4*time.Second)
	require.True(t, nsHasAddr(t, e.nsKA, e.vip()), "VIP still on keepalived's side")
	require.False(t, nsHasAddr(t, e.nsX, e.vip()))
}

// Clean stop: the Runner, at the higher priority, is master; Stop sends a
// priority-0 advert, and keepalived takes over after its Skew_Time rather than
// its full Master_Down_Interval.
func testInteropCleanStop(t *testing.T, e *interopEnv) {
	waitState(t, e.x.notes, StateMaster, e.xDownInterval()+500*time.Millisecond)
	waitFor(t, 3*time.Second, "keepalived to yield (VIP gone from its namespace)", func() bool {
		return !nsHasAddr(t, e.nsKA, e.vip())
	})
	time.Sleep(2 * e.c.advInt) // keepalived settles in BACKUP
	require.Equal(t, StateMaster, e.x.r.State())

	seen := watchVIP(t, e.kaNS, interopKAIf, e.vip())
	stopping := time.Now()
	e.x.r.Stop()
	at := awaitVIP(t, seen, time.Second, "keepalived to be MASTER (VIP on its interface) after Stop")
	zero, _ := e.sniffKA.waitAdvert(t, e.xSrc, stopping, time.Second, func(a Advertisement) bool { return a.Priority == PriorityStop })
	skew := SkewTime(e.c.version, e.c.kaPrio, e.c.advInt)
	t.Logf("keepalived became MASTER %v after the runner's priority-0 advert, %v after Stop was called (Skew_Time %v)",
		at.Sub(zero.at).Round(time.Millisecond), at.Sub(stopping).Round(time.Millisecond), skew)
	assertTakeover(t, "keepalived after the runner's priority 0", at.Sub(zero.at), skew)
	require.False(t, nsHasAddr(t, e.nsX, e.vip()), "VIP gone from the runner's side")
}

// Wrong auth_pass: each side drops the other's adverts, so both end up
// master. The Runner, at the higher priority, would not yield anyway, so
// its side is checked by its Dropped count while it is BACKUP; keepalived
// would yield to it if it accepted its adverts. (keepalived 2.2.7 as master
// stops sending adverts while it receives ones with a bad password, so
// Dropped need not grow once both are master.)
func testInteropAuthMismatch(t *testing.T, e *interopEnv) {
	dropped := e.x.r.Dropped()
	waitState(t, e.x.notes, StateMaster, e.xDownInterval()+500*time.Millisecond)
	require.Greater(t, e.x.r.Dropped(), dropped, "the runner drops keepalived's adverts")
	require.Contains(t, e.x.log.String(), ErrAuthPass.Error())
	time.Sleep(2 * e.c.advInt)
	require.Equal(t, StateMaster, e.x.r.State())
	require.True(t, nsHasAddr(t, e.nsX, e.vip()), "VIP on the runner's side")
	require.True(t, nsHasAddr(t, e.nsKA, e.vip()), "VIP still on keepalived's side")
	require.Contains(t, e.ka.log.String(), "received an invalid passwd", "keepalived drops the runner's adverts")
}

// track_script on the xlb side, driven as the director drives it: the
// Runner, master at 150 over keepalived's 100, has a tracker of weight -60.
// When it fails the Runner advertises 90, keepalived (preempting by
// default) discards those adverts and takes over one Master_Down_Interval
// after the last priority-150 advert, and the Runner yields. When the
// tracker recovers the Runner, at 150 again, preempts back one
// Master_Down_Interval (at 150) after keepalived's last advert it accepted.
func testInteropTrackXLB(t *testing.T, e *interopEnv) {
	tracker := []Tracker{{Weight: -60, Status: TrackOK}}
	waitState(t, e.x.notes, StateMaster, e.xDownInterval()+500*time.Millisecond)
	waitFor(t, 3*time.Second, "keepalived to yield", func() bool { return !hasAddr(t, e.kaH, interopKAIf, e.vip()) })

	tracker[0].Status = TrackFailed
	prio, fault := EffectivePriority(e.c.xPrio, tracker)
	require.False(t, fault)
	require.Equal(t, uint8(90), prio)
	kaSeen := watchVIP(t, e.kaNS, interopKAIf, e.vip())
	failed := time.Now()
	e.x.r.SetEffectivePriority(prio)
	kaDown := MasterDownInterval(e.c.version, e.c.kaPrio, e.c.advInt, 0)
	kaAt := awaitVIP(t, kaSeen, kaDown+time.Second, "keepalived to take over from the runner at 90")
	waitState(t, e.x.notes, StateBackup, time.Second)
	require.False(t, hasAddr(t, e.xH, interopXIf, e.vip()), "the runner dropped the VIP")
	e.sniffKA.waitAdvert(t, e.xSrc, failed, time.Second, func(a Advertisement) bool { return a.Priority == 90 })
	last150 := lastAdvertWith(t, e.sniffKA, e.xSrc, kaAt, 150)
	t.Logf("tracker failed: keepalived MASTER %v later, %v after the runner's last priority-150 advert (keepalived's Master_Down_Interval %v)",
		kaAt.Sub(failed).Round(time.Millisecond), kaAt.Sub(last150.at).Round(time.Millisecond), kaDown)
	assertTakeover(t, "keepalived after the runner's last priority-150 advert", kaAt.Sub(last150.at), kaDown)
	require.Contains(t, e.ka.log.String(), "received lower priority (90) advert", "keepalived read the runner's priority-90 adverts")
	require.NotContains(t, strings.ToLower(e.ka.log.String()), "invalid")

	tracker[0].Status = TrackOK
	prio, _ = EffectivePriority(e.c.xPrio, tracker)
	require.Equal(t, e.c.xPrio, prio)
	xSeen := watchVIP(t, e.xNS, interopXIf, e.vip())
	recovered := time.Now()
	e.x.r.SetEffectivePriority(prio)
	xAt := awaitVIP(t, xSeen, e.xDownInterval()+time.Second, "the runner to preempt back at 150")
	waitState(t, e.x.notes, StateMaster, time.Second)
	waitFor(t, time.Second, "keepalived to yield again", func() bool { return !hasAddr(t, e.kaH, interopKAIf, e.vip()) })
	lastKA, ok := e.sniffX.lastAdvertBefore(e.kaSrc, recovered)
	require.True(t, ok)
	t.Logf("tracker recovered: runner MASTER %v later, %v after the last keepalived advert it accepted (its Master_Down_Interval at 150 %v)",
		xAt.Sub(recovered).Round(time.Millisecond), xAt.Sub(lastKA.at).Round(time.Millisecond), e.xDownInterval())
	assertTakeover(t, "the runner after keepalived's last advert at 100", xAt.Sub(lastKA.at), e.xDownInterval())
	require.Zero(t, e.x.r.Dropped())
}

// The mirror: keepalived, master at 150, tracks a vrrp_script of weight -60
// testing that a file exists; the Runner is backup at 100. Removing the file
// drops keepalived to 90 at the script's next run, the Runner discards the
// priority-90 adverts and takes over one Master_Down_Interval after the last
// priority-150 one.
func testInteropTrackKeepalived(t *testing.T, e *interopEnv) {
	e.stayBackup(t, 500*time.Millisecond)
	_, a := e.sniffX.waitAdvert(t, e.kaSrc, time.Now(), time.Second, nil)
	require.Equal(t, e.c.kaPrio, a.Priority, "keepalived's script passes")

	xSeen := watchVIP(t, e.xNS, interopXIf, e.vip())
	removed := time.Now()
	require.NoError(t, os.Remove(e.c.kaTrackFile))
	const scriptInterval = time.Second
	xDown := e.xDownInterval()
	xAt := awaitVIP(t, xSeen, scriptInterval+xDown+time.Second, "the runner to take over from keepalived at 90")
	waitState(t, e.x.notes, StateMaster, time.Second)
	first90, _ := e.sniffX.waitAdvert(t, e.kaSrc, removed, time.Second, func(a Advertisement) bool { return a.Priority == 90 })
	last150 := lastAdvertWith(t, e.sniffX, e.kaSrc, xAt, 150)
	waitFor(t, time.Second, "keepalived to yield to the runner's 100", func() bool { return !hasAddr(t, e.kaH, interopKAIf, e.vip()) })

	// keepalived's timers predict: the script notices within its interval,
	// keepalived's next advert carries 90 (at most advert_int later), and the
	// Runner's down timer, running since the last 150, fires xDown after it.
	lo, hi := xDown-e.c.advInt, scriptInterval+xDown
	t.Logf("track_script: file removed; keepalived advertised 90 after %v; runner MASTER %v after the removal (predicted %v..%v), %v after keepalived's last priority-150 advert (Master_Down_Interval at 100: %v)",
		first90.at.Sub(removed).Round(time.Millisecond), xAt.Sub(removed).Round(time.Millisecond), lo, hi,
		xAt.Sub(last150.at).Round(time.Millisecond), xDown)
	assertTakeover(t, "the runner after keepalived's last priority-150 advert", xAt.Sub(last150.at), xDown)
	assert.Less(t, xAt.Sub(removed), hi+takeoverTolerance, "takeover after the file removal")
	assert.Less(t, first90.at.Sub(removed), scriptInterval+e.c.advInt+takeoverTolerance, "keepalived's script noticed within its interval")
}

// lastAdvertWith is the last advert from src with priority prio captured
// before t.
func lastAdvertWith(t *testing.T, s *sniffer, src netip.Addr, before time.Time, prio uint8) sniffed {
	t.Helper()
	ps, as := s.adverts(src)
	for i := len(ps) - 1; i >= 0; i-- {
		if ps[i].at.Before(before) && as[i].Priority == prio {
			return ps[i]
		}
	}
	t.Fatalf("no priority-%d advert from %s before %v", prio, src, before)
	return sniffed{}
}

// takeoverTolerance is how much later than its timer a takeover may be
// seen, and how much slower than keepalived xlb may be. Measured to the VIP
// appearing, a takeover is late by the 10 ms VIP poll, a netlink dump and a
// process wake-up or two. The takeover cases on this 2-core machine: idle
// (19 runs), xlb at most 13 ms past its timer, keepalived 33 ms (22 ms on
// the VRRPv3 clean stop: 83 ms against a 61 ms Skew_Time), xlb never more
// than 9 ms behind keepalived; with one core kept busy, as another test
// package running beside this one does (14 runs), xlb 35 ms (v2 crash:
// 3.644 s against 3.609 s), keepalived 34 ms, xlb at most 23 ms behind.
// 50 ms holds all of that and is less than the whole VRRPv3 clean-stop
// takeover, so a takeover twice as slow as its timer fails; it still
// catches a missed re-arm (a whole advert interval) or a v2 skew from the
// wrong priority (195 ms for 150 against 100). With both cores kept busy
// not even the 150 ms allowed before held: xlb once took over 199 ms late,
// its own timer 71 ms late. Early takeovers are held to 5 ms
// (assertTakeover), since no timer may fire before its time.
var takeoverTolerance = 50 * time.Millisecond

// inVM is set by vmtest in its guest (QEMU, often without KVM), where
// timers are late by the emulator's scheduling: late takeovers are allowed
// 200 ms there, and the garp_master_delay batch 300 ms.
var inVM = os.Getenv("VMTEST") != ""

// garpDelayTolerance bounds, in seconds, how far the second batch of
// announcements may be from garp_master_delay after the first advert.
var garpDelayTolerance = 0.1

func init() {
	if inVM {
		takeoverTolerance = 200 * time.Millisecond
		garpDelayTolerance = 0.3
	}
}

// assertTakeover checks a takeover measured from the advert that started
// the timer is neither early (the timer cannot fire before want; 5 ms for
// timestamp granularity) nor late by more than takeoverTolerance.
func assertTakeover(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	assert.GreaterOrEqual(t, got, want-5*time.Millisecond, "%s: %v, timer %v: too early", what, got, want)
	assert.LessOrEqual(t, got, want+takeoverTolerance, "%s: %v, timer %v: too late", what, got, want)
}

// takeover is one measured takeover: from the event (SIGKILL, SIGTERM,
// muting or stopping the Runner) and from the advert on the wire that
// started the backup's timer (the master's last advert, or its priority-0
// one), until the VIP is on the backup's interface; and from that advert
// to the new master's first advert, its timer alone.
type takeover struct{ fromEvent, fromAdvert, timer time.Duration }

func (to takeover) String() string {
	return fmt.Sprintf("%.3fs", to.fromAdvert.Seconds())
}

// measure makes a takeover of the backup whose adverts from src capture s
// holds, from event and the advert at trigger to its VIP seen at vipAt.
func (e *interopEnv) measure(t *testing.T, s *sniffer, src netip.Addr, event, trigger, vipAt time.Time) takeover {
	t.Helper()
	first, _ := s.waitAdvert(t, src, trigger, time.Second, nil)
	return takeover{vipAt.Sub(event), vipAt.Sub(trigger), first.at.Sub(trigger)}
}

// settle waits until the master side has its VIP, the backup side has not
// and the Runner is in state want, then for one more advert from src.
func (e *interopEnv) settle(t *testing.T, within time.Duration, want State, src netip.Addr, s *sniffer) {
	t.Helper()
	waitFor(t, within, "one master: "+want.String()+" runner", func() bool {
		x, ka := hasAddr(t, e.xH, interopXIf, e.vip()), hasAddr(t, e.kaH, interopKAIf, e.vip())
		return (want == StateMaster) == x && x != ka && e.x.r.State() == want
	})
	s.waitAdvert(t, src, time.Now(), max(2*e.c.advInt, time.Second), nil)
}

// takeoverToXLB measures xlb, BACKUP at 100, taking over from keepalived,
// MASTER at 150: after SIGKILL of keepalived's VRRP process, then after
// SIGTERM (keepalived sends priority 0).
func takeoverToXLB(t *testing.T, c interopCase) (crash, clean takeover) {
	c.kaPrio, c.xPrio = 150, 100
	e := &interopEnv{interopNet: newInteropNet(t), c: c, kaSrc: interopKAIP}
	conf := keepalivedConf(c)
	// Both start BACKUP; keepalived's shorter down interval makes it master.
	e.ka = e.startKeepalived(t, conf)
	e.x = e.startRunner(t, c)
	kaDown := MasterDownInterval(c.version, c.kaPrio, c.advInt, 0)
	e.settle(t, kaDown+3*time.Second, StateBackup, e.kaSrc, e.sniffX)

	// Crash, right after an advert so the whole down interval is seen.
	seen := watchVIP(t, e.xNS, interopXIf, e.vip())
	e.sniffX.waitAdvert(t, e.kaSrc, time.Now(), max(2*c.advInt, time.Second), nil)
	killed := time.Now()
	require.NoError(t, syscall.Kill(e.ka.vrrpPid, syscall.SIGKILL))
	at := awaitVIP(t, seen, e.xDownInterval()+time.Second, "runner takeover after SIGKILL")
	last, ok := e.sniffX.lastAdvertBefore(e.kaSrc, at)
	require.True(t, ok)
	crash = e.measure(t, e.sniffKA, e.x.conn.Source(), killed, last.at, at)
	e.ka.stop()
	// A killed keepalived leaves its VIP behind.
	runCmd(t, "ip", "-n", e.nsKA, "addr", "del", e.c.vips()[0].String(), "dev", interopKAIf)

	// Clean stop of a new keepalived, master again once it preempts.
	e.ka = e.startKeepalived(t, conf)
	e.settle(t, kaDown+3*time.Second, StateBackup, e.kaSrc, e.sniffX)
	seen = watchVIP(t, e.xNS, interopXIf, e.vip())
	termed := time.Now()
	require.NoError(t, syscall.Kill(e.ka.vrrpPid, syscall.SIGTERM))
	at = awaitVIP(t, seen, time.Second, "runner takeover after SIGTERM")
	zero, _ := e.sniffX.waitAdvert(t, e.kaSrc, termed, time.Second, func(a Advertisement) bool { return a.Priority == PriorityStop })
	clean = e.measure(t, e.sniffKA, e.x.conn.Source(), termed, zero.at, at)
	return crash, clean
}

// takeoverToKeepalived measures keepalived, BACKUP at 100, taking over from
// xlb, MASTER at 150: after xlb falls silent (a crash), then after Stop
// (xlb sends priority 0).
func takeoverToKeepalived(t *testing.T, c interopCase) (crash, clean takeover) {
	c.kaPrio, c.xPrio = 100, 150
	e := &interopEnv{interopNet: newInteropNet(t), c: c, kaSrc: interopKAIP}
	e.ka = e.startKeepalived(t, keepalivedConf(c))
	e.x = e.startRunner(t, c)
	e.xSrc = e.x.conn.Source()
	xDown := e.xDownInterval()
	e.settle(t, xDown+3*time.Second, StateMaster, e.xSrc, e.sniffKA)

	seen := watchVIP(t, e.kaNS, interopKAIf, e.vip())
	e.sniffKA.waitAdvert(t, e.xSrc, time.Now(), max(2*c.advInt, time.Second), nil)
	e.x.conn.muted.Store(true)
	muted := time.Now()
	kaDown := MasterDownInterval(c.version, c.kaPrio, c.advInt, 0)
	at := awaitVIP(t, seen, kaDown+time.Second, "keepalived takeover after the runner fell silent")
	last, ok := e.sniffKA.lastAdvertBefore(e.xSrc, at)
	require.True(t, ok)
	crash = e.measure(t, e.sniffX, e.kaSrc, muted, last.at, at)
	e.x.r.Stop()

	// Clean stop of a new Runner, master again once it preempts.
	e.x = e.startRunner(t, c)
	e.settle(t, xDown+3*time.Second, StateMaster, e.xSrc, e.sniffKA)
	seen = watchVIP(t, e.kaNS, interopKAIf, e.vip())
	stopped := time.Now()
	e.x.r.Stop()
	at = awaitVIP(t, seen, time.Second, "keepalived takeover after Stop")
	zero, _ := e.sniffKA.waitAdvert(t, e.xSrc, stopped, time.Second, func(a Advertisement) bool { return a.Priority == PriorityStop })
	clean = e.measure(t, e.sniffX, e.kaSrc, stopped, zero.at, at)
	return crash, clean
}

// testInteropTakeover compares takeover times, keepalived against xlb, in
// one harness and with one rule: the backup (priority 100 on either side)
// counts as MASTER once its VIP is on its interface. Each figure runs from
// the advert that started the backup's timer, so it does not depend on
// where in an advert interval the master died: it should be the backup's
// Master_Down_Interval after a crash and its Skew_Time after a clean stop.
//
// The two directions run side by side, each in its own namespaces, so the
// v2 case takes ~15 s instead of ~30 s: the load is a few mostly idle
// processes, and whatever noise there is both directions share.
func testInteropTakeover(t *testing.T, c interopCase) {
	var toXLBCrash, toXLBClean, toKACrash, toKAClean takeover
	ok := t.Run("directions", func(t *testing.T) {
		t.Run("keepalived->xlb", func(t *testing.T) {
			t.Parallel()
			toXLBCrash, toXLBClean = takeoverToXLB(t, c)
		})
		t.Run("xlb->keepalived", func(t *testing.T) {
			t.Parallel()
			toKACrash, toKAClean = takeoverToKeepalived(t, c)
		})
	})
	if !ok {
		return
	}
	label := fmt.Sprintf("v%d %ss", c.version, seconds(c.advInt))
	mdi := MasterDownInterval(c.version, 100, c.advInt, 0)
	skew := SkewTime(c.version, 100, c.advInt)
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	t.Logf("takeover crash %s: xlb->keepalived %v, keepalived->xlb %v (VIP up, from the last advert; first advert as master %v, %v; from the silencing / SIGKILL %v, %v; Master_Down_Interval at 100 %v)",
		label, toKACrash, toXLBCrash, ms(toKACrash.timer), ms(toXLBCrash.timer), ms(toKACrash.fromEvent), ms(toXLBCrash.fromEvent), mdi)
	t.Logf("takeover clean %s: xlb->keepalived %v, keepalived->xlb %v (VIP up, from the priority-0 advert; first advert as master %v, %v; from Stop / SIGTERM %v, %v; Skew_Time at 100 %v)",
		label, toKAClean, toXLBClean, ms(toKAClean.timer), ms(toXLBClean.timer), ms(toKAClean.fromEvent), ms(toXLBClean.fromEvent), skew)

	assertTakeover(t, "xlb after a keepalived crash", toXLBCrash.fromAdvert, mdi)
	assertTakeover(t, "xlb after keepalived's priority 0", toXLBClean.fromAdvert, skew)
	assert.LessOrEqual(t, toXLBCrash.fromAdvert-toKACrash.fromAdvert, takeoverTolerance, "xlb slower than keepalived after a crash")
	assert.LessOrEqual(t, toXLBClean.fromAdvert-toKAClean.fromAdvert, takeoverTolerance, "xlb slower than keepalived after a clean stop")
}

func TestInteropKeepalived(t *testing.T) {
	interopPrereqs(t)
	env := func(f func(*testing.T, *interopEnv)) func(*testing.T, interopCase) {
		return func(t *testing.T, c interopCase) { f(t, startInterop(t, c)) }
	}
	// In the VM (QEMU without KVM) keepalived and the runner share one
	// emulated CPU: at 100 ms a late advert there is the emulator's, not
	// either side's, and a backup takes over while the master still lives.
	// The VM runs version 3 at 1 s; the host at 100 ms.
	v3 := 100 * time.Millisecond
	if inVM {
		v3 = time.Second
	}
	for _, tc := range []struct {
		interopCase
		run func(*testing.T, interopCase)
	}{
		{interopCase{name: "v2-multicast-failover", version: Version2, advInt: time.Second, kaPrio: 200, xPrio: 100}, env(testInteropFailover)},
		{interopCase{name: "v3-multicast-failover", version: Version3, advInt: v3, kaPrio: 200, xPrio: 100, xGARPDelay: time.Second}, env(testInteropFailover)},
		{interopCase{name: "v2-unicast-failover", version: Version2, unicast: true, advInt: time.Second, kaPrio: 200, xPrio: 100}, env(testInteropFailover)},
		{interopCase{name: "v2-preempt", version: Version2, advInt: time.Second, kaPrio: 100, xPrio: 200}, env(testInteropPreempt)},
		{interopCase{name: "v3-unicast-preempt", version: Version3, unicast: true, advInt: v3, kaPrio: 100, xPrio: 200}, env(testInteropPreempt)},
		{interopCase{name: "v2-nopreempt", version: Version2, advInt: time.Second, kaPrio: 100, xPrio: 200, xNoPreempt: true}, env(testInteropNoPreempt)},
		{interopCase{name: "v3-clean-stop", version: Version3, advInt: v3, kaPrio: 100, xPrio: 200}, env(testInteropCleanStop)},
		{interopCase{name: "v2-auth-mismatch", version: Version2, advInt: time.Second, kaPrio: 100, xPrio: 200, kaAuthPass: "kapass", xAuthPass: "xlbpass"}, env(testInteropAuthMismatch)},

		{interopCase{name: "v3-ipv6-multicast-failover", version: Version3, ipv6: true, advInt: v3, kaPrio: 200, xPrio: 100, xGARPDelay: time.Second}, env(testInteropFailover)},
		{interopCase{name: "v3-ipv6-multicast-preempt", version: Version3, ipv6: true, advInt: v3, kaPrio: 100, xPrio: 200}, env(testInteropPreempt)},
		{interopCase{name: "v3-ipv6-unicast-preempt", version: Version3, ipv6: true, unicast: true, advInt: v3, kaPrio: 100, xPrio: 200}, env(testInteropPreempt)},

		{interopCase{name: "v3-track-xlb-weight-60", version: Version3, advInt: v3, kaPrio: 100, xPrio: 150}, env(testInteropTrackXLB)},
		{interopCase{name: "v3-track-keepalived-weight-60", version: Version3, advInt: v3, kaPrio: 150, xPrio: 100}, func(t *testing.T, c interopCase) {
			c.kaTrackFile = filepath.Join(t.TempDir(), "up")
			require.NoError(t, os.WriteFile(c.kaTrackFile, nil, 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(c.kaTrackFile), "chk.sh"),
				[]byte("#!/bin/sh\n[ -f "+c.kaTrackFile+" ]\n"), 0o755))
			testInteropTrackKeepalived(t, startInterop(t, c))
		}},

		{interopCase{name: "takeover-v2-1s", version: Version2, advInt: time.Second}, testInteropTakeover},
		{interopCase{name: "takeover-v3-" + v3.String(), version: Version3, advInt: v3}, testInteropTakeover},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, tc.interopCase) })
	}
}

// TestConnVeth sends an advert from one Conn to another across a veth
// pair and checks what the receiver learns from the IP header. Root only.
func TestConnVeth(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, raw sockets)")
	}
	requireTool(t, "ip", "iproute2")
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
