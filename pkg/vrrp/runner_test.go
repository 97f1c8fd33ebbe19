package vrrp

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

type sentAdvert struct {
	b   []byte
	dst netip.Addr
}

type fakeConn struct {
	src, dst netip.Addr
	in       chan rxPacket
	closed   chan struct{}
	once     sync.Once

	mu   sync.Mutex
	sent []sentAdvert
}

func newFakeConn() *fakeConn {
	return &fakeConn{
		src:    netip.MustParseAddr("10.0.0.2"),
		dst:    MulticastGroup4,
		in:     make(chan rxPacket, 16),
		closed: make(chan struct{}),
	}
}

func (c *fakeConn) ReadAdvert(buf []byte) ([]byte, PacketInfo, error) {
	select {
	case p := <-c.in:
		return buf[:copy(buf, p.b)], p.info, nil
	case <-c.closed:
		return nil, PacketInfo{}, net.ErrClosed
	}
}

func (c *fakeConn) WriteAdvert(b []byte, dst netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, sentAdvert{append([]byte(nil), b...), dst})
	return nil
}

func (c *fakeConn) Source() netip.Addr         { return c.src }
func (c *fakeConn) Destinations() []netip.Addr { return []netip.Addr{c.dst} }
func (c *fakeConn) Close() error               { c.once.Do(func() { close(c.closed) }); return nil }

func (c *fakeConn) adverts(t *testing.T, local Local) []Advertisement {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Advertisement
	for _, s := range c.sent {
		adv, err := Validate(s.b, PacketInfo{Src: c.src, Dst: s.dst, TTL: TTL}, local)
		require.NoError(t, err)
		out = append(out, adv)
	}
	return out
}

// inject delivers an advert from src as the peer would send it.
func (c *fakeConn) inject(t *testing.T, src netip.Addr, adv Advertisement) {
	t.Helper()
	require.NoError(t, adv.SetChecksum(src, c.dst, false))
	b, err := adv.MarshalBinary()
	require.NoError(t, err)
	c.in <- rxPacket{b: b, info: PacketInfo{Src: src, Dst: c.dst, TTL: TTL, PayloadLen: len(b)}}
}

type fakeARP struct {
	mu   sync.Mutex
	sent []netip.Addr
}

func (a *fakeARP) SendGARP(vip netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent = append(a.sent, vip)
	return nil
}
func (a *fakeARP) Close() error { return nil }
func (a *fakeARP) count() int   { a.mu.Lock(); defer a.mu.Unlock(); return len(a.sent) }

type fakeVIPs struct {
	mu  sync.Mutex
	set map[netip.Prefix]bool
}

func (f *fakeVIPs) AddVIPs(v []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.set == nil {
		f.set = map[netip.Prefix]bool{}
	}
	for _, p := range v {
		f.set[p] = true
	}
	return nil
}

func (f *fakeVIPs) RemoveVIPs(v []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range v {
		delete(f.set, p)
	}
	return nil
}

func (f *fakeVIPs) has(p netip.Prefix) bool { f.mu.Lock(); defer f.mu.Unlock(); return f.set[p] }

var testVIP = netip.MustParsePrefix("10.0.0.100/24")

func newTestRunner(t *testing.T, prio uint8) (*Runner, *fakeConn, *fakeARP, *fakeVIPs, chan Notify) {
	t.Helper()
	conn, arp, vips := newFakeConn(), &fakeARP{}, &fakeVIPs{}
	notes := make(chan Notify, 32)
	r, err := NewRunner(RunnerConfig{
		Instance: Config{VRID: 51, Version: Version3, Priority: prio, AdverInt: 50 * time.Millisecond,
			GARPMasterDelay: -1, GARPMasterRepeat: 2},
		VIPs:     []netip.Prefix{testVIP},
		Conn:     conn,
		ARP:      arp,
		Addrs:    vips,
		OnNotify: func(n Notify) { notes <- n },
		Logf:     t.Logf,
	})
	require.NoError(t, err)
	t.Cleanup(r.Stop)
	return r, conn, arp, vips, notes
}

func waitState(t *testing.T, notes <-chan Notify, want State, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case n := <-notes:
			if n.State == want {
				return
			}
		case <-deadline:
			t.Fatalf("no transition to %v within %v", want, within)
		}
	}
}

func TestRunnerBecomesMasterAlone(t *testing.T) {
	r, conn, arp, vips, notes := newTestRunner(t, 100)
	assert.Equal(t, StateInit, r.State())
	r.Start()
	waitState(t, notes, StateBackup, time.Second)
	waitState(t, notes, StateMaster, 2*time.Second)
	assert.Equal(t, StateMaster, r.State())
	assert.Equal(t, uint8(100), r.Priority())
	assert.True(t, vips.has(testVIP))
	assert.Equal(t, 2, arp.count(), "GARPMasterRepeat per VIP")

	time.Sleep(200 * time.Millisecond)
	local := Local{Version: Version3, VRID: 51, VIPs: []netip.Addr{testVIP.Addr()}}
	advs := conn.adverts(t, local)
	require.GreaterOrEqual(t, len(advs), 2, "first advert plus periodic ones")
	for _, a := range advs {
		assert.Equal(t, uint8(100), a.Priority)
		assert.Equal(t, 50*time.Millisecond, a.Interval())
	}

	r.Stop()
	waitState(t, notes, StateInit, time.Second)
	advs = conn.adverts(t, local)
	assert.Equal(t, PriorityStop, advs[len(advs)-1].Priority, "shutdown sends priority 0")
	assert.False(t, vips.has(testVIP))
	<-r.Done()
}

func TestRunnerStaysBackupWhileHearingMaster(t *testing.T) {
	r, conn, _, vips, notes := newTestRunner(t, 100)
	r.Start()
	waitState(t, notes, StateBackup, time.Second)
	peer := netip.MustParseAddr("10.0.0.1")
	adv := Advertisement{Version: Version3, Type: TypeAdvertisement, VRID: 51, Priority: 200,
		AdverInt: 5, Addresses: []netip.Addr{testVIP.Addr()}}
	for range 10 { // 500 ms, well past the 170 ms down interval
		conn.inject(t, peer, adv)
		time.Sleep(50 * time.Millisecond)
	}
	assert.Equal(t, StateBackup, r.State())
	assert.False(t, vips.has(testVIP))
	assert.Zero(t, r.Dropped())

	// A bad advert (wrong VRID) is dropped, not fed to the machine.
	bad := adv
	bad.VRID = 52
	conn.inject(t, peer, bad)

	// The master leaves with priority 0: take over after Skew_Time.
	stop := adv
	stop.Priority = PriorityStop
	start := time.Now()
	conn.inject(t, peer, stop)
	waitState(t, notes, StateMaster, time.Second)
	assert.Less(t, time.Since(start), 150*time.Millisecond)
	assert.True(t, vips.has(testVIP))
	assert.Equal(t, uint64(1), r.Dropped())

	// A higher priority master appears: back to BACKUP, VIPs removed.
	conn.inject(t, peer, adv)
	waitState(t, notes, StateBackup, time.Second)
	assert.False(t, vips.has(testVIP))
}

func TestRunnerPriorityAndFault(t *testing.T) {
	r, conn, _, vips, notes := newTestRunner(t, 100)
	r.Start()
	waitState(t, notes, StateMaster, 2*time.Second)
	r.SetEffectivePriority(90)
	assert.Equal(t, uint8(90), r.Priority())
	r.Fault()
	waitState(t, notes, StateFault, time.Second)
	assert.False(t, vips.has(testVIP))
	advs := conn.adverts(t, Local{Version: Version3, VRID: 51, VIPs: []netip.Addr{testVIP.Addr()}})
	assert.Equal(t, PriorityStop, advs[len(advs)-1].Priority)
	r.Recover()
	waitState(t, notes, StateBackup, time.Second)
	waitState(t, notes, StateMaster, 2*time.Second)
}

func TestNewRunnerRejects(t *testing.T) {
	_, err := NewRunner(RunnerConfig{Instance: Config{VRID: 1}})
	assert.ErrorIs(t, err, ErrConfig)
	_, err = NewRunner(RunnerConfig{Instance: Config{}, Conn: newFakeConn()})
	assert.ErrorIs(t, err, ErrConfig)
	_, err = NewRunner(RunnerConfig{Instance: Config{VRID: 1},
		VIPs: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/128")}, Conn: newFakeConn()})
	assert.ErrorIs(t, err, ErrConfig)
	// Stop without Start returns.
	r, err := NewRunner(RunnerConfig{Instance: Config{VRID: 1}, Conn: newFakeConn()})
	require.NoError(t, err)
	r.Stop()
}

func TestARPFrame(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	vip := netip.MustParseAddr("10.0.0.100")
	f, err := ARPFrame(mac, vip)
	require.NoError(t, err)
	p := capturedPacket{Frame: f}
	require.NoError(t, p.decodeLink(linkTypeEthernet))
	assert.Equal(t, uint16(1), p.ARPOp)
	assert.Equal(t, vip, p.ARPSender)
	assert.Equal(t, vip, p.ARPTarget)
	assert.True(t, p.GratuitousARPForTarget)
	assert.Equal(t, [6]byte(mac), p.ARPSenderMAC)
	assert.True(t, slices.Equal(f[:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}))
	_, err = ARPFrame(mac, netip.MustParseAddr("::1"))
	assert.Error(t, err)
}

func TestParseIPv4(t *testing.T) {
	adv := Advertisement{Version: Version2, Type: TypeAdvertisement, VRID: 7, Priority: 100,
		AdverInt: 1, Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")}}
	require.NoError(t, adv.SetChecksum(netip.Addr{}, netip.Addr{}, false))
	msg, err := adv.MarshalBinary()
	require.NoError(t, err)
	hdr := []byte{0x45, 0, 0, byte(20 + len(msg)), 0, 0, 0, 0, 255, IPProtocol, 0, 0, 10, 0, 0, 1, 224, 0, 0, 18}
	pkt := append(hdr, msg...)
	pkt = append(pkt, 0, 0, 0) // padding
	payload, info, ok := parseIPv4(pkt)
	require.True(t, ok)
	assert.Equal(t, PacketInfo{Src: netip.MustParseAddr("10.0.0.1"), Dst: MulticastGroup4, TTL: 255, PayloadLen: len(msg)}, info)
	got, err := Validate(payload, info, Local{Version: Version2, VRID: 7, AdverInt: time.Second, VIPs: adv.Addresses})
	require.NoError(t, err)
	assert.Equal(t, uint8(100), got.Priority)
	_, _, ok = parseIPv4(pkt[:10])
	assert.False(t, ok)
}

type fakeNA struct {
	mu   sync.Mutex
	sent []netip.Addr
}

func (n *fakeNA) SendNA(vip netip.Addr) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, vip)
	return nil
}
func (n *fakeNA) Close() error { return nil }
func (n *fakeNA) addrs() []netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.sent)
}

// An IPv6 instance runs as an IPv4 one does, with unsolicited NAs in place
// of gratuitous ARPs and the checksum over the IPv6 pseudo-header.
func TestRunnerIPv6(t *testing.T) {
	conn, arp, na, vips := newFakeConn(), &fakeARP{}, &fakeNA{}, &fakeVIPs{}
	conn.src, conn.dst = netip.MustParseAddr("fe80::2"), MulticastGroup6
	v6 := []netip.Prefix{netip.MustParsePrefix("2001:db8::100/64"), netip.MustParsePrefix("2001:db8::101/128")}
	notes := make(chan Notify, 32)
	r, err := NewRunner(RunnerConfig{
		Instance: Config{VRID: 51, Version: Version3, AdverInt: 50 * time.Millisecond, GARPMasterDelay: -1, GARPMasterRepeat: 2},
		VIPs:     v6,
		Conn:     conn, ARP: arp, NA: na, Addrs: vips,
		OnNotify: func(n Notify) { notes <- n },
		Logf:     t.Logf,
	})
	require.NoError(t, err)
	t.Cleanup(r.Stop)
	r.Start()
	waitState(t, notes, StateMaster, 2*time.Second)
	assert.True(t, vips.has(v6[0]) && vips.has(v6[1]))
	assert.Zero(t, arp.count())
	assert.Equal(t, []netip.Addr{v6[0].Addr(), v6[1].Addr(), v6[0].Addr(), v6[1].Addr()}, na.addrs(),
		"GARPMasterRepeat rounds over the VIPs")

	// What it sends validates at an IPv6 peer, checksum included.
	local := Local{Version: Version3, VRID: 51, VIPs: []netip.Addr{v6[0].Addr(), v6[1].Addr()}}
	advs := conn.adverts(t, local)
	require.NotEmpty(t, advs)
	assert.Equal(t, uint8(100), advs[0].Priority)

	// A higher-priority IPv6 master takes over.
	adv := Advertisement{Version: Version3, Type: TypeAdvertisement, VRID: 51, Priority: 200, AdverInt: 5, Addresses: local.VIPs}
	conn.inject(t, netip.MustParseAddr("fe80::1"), adv)
	waitState(t, notes, StateBackup, time.Second)
	assert.False(t, vips.has(v6[0]))
	assert.Zero(t, r.Dropped())
}

func TestNewRunnerRejectsFamilies(t *testing.T) {
	v4, v6 := netip.MustParsePrefix("10.0.0.100/24"), netip.MustParsePrefix("2001:db8::100/64")
	conn6 := newFakeConn()
	conn6.src, conn6.dst = netip.MustParseAddr("fe80::2"), MulticastGroup6
	for _, tc := range []struct {
		name string
		cfg  RunnerConfig
	}{
		{"mixed families", RunnerConfig{Instance: Config{VRID: 1, Version: Version3}, VIPs: []netip.Prefix{v4, v6}, Conn: newFakeConn()}},
		{"IPv6 VIP, IPv4 source", RunnerConfig{Instance: Config{VRID: 1, Version: Version3}, VIPs: []netip.Prefix{v6}, Conn: newFakeConn()}},
		{"IPv4 VIP, IPv6 source", RunnerConfig{Instance: Config{VRID: 1, Version: Version3}, VIPs: []netip.Prefix{v4}, Conn: conn6}},
		{"IPv6 with VRRPv2", RunnerConfig{Instance: Config{VRID: 1, Version: Version2}, VIPs: []netip.Prefix{v6}, Conn: conn6}},
		{"IPv4-mapped", RunnerConfig{Instance: Config{VRID: 1, Version: Version3}, VIPs: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.1/128")}, Conn: conn6}},
	} {
		_, err := NewRunner(tc.cfg)
		assert.ErrorIs(t, err, ErrConfig, tc.name)
	}
}

// IPv6 VIPs are added as keepalived's netlink_ipaddress adds them.
func TestVIPAddrFlags(t *testing.T) {
	a := vipAddrToAdd(netip.MustParsePrefix("10.0.0.100/24"))
	assert.Zero(t, a.Flags)
	assert.Zero(t, a.ValidLft)

	a = vipAddrToAdd(netip.MustParsePrefix("2001:db8::100/64"))
	assert.Equal(t, unix.IFA_F_NODAD, a.Flags)
	assert.Zero(t, a.ValidLft, "default lifetimes")
	assert.Zero(t, a.PreferedLft)

	a = vipAddrToAdd(netip.MustParsePrefix("2001:db8::100/128"))
	assert.Equal(t, unix.IFA_F_NODAD, a.Flags)
	assert.Equal(t, int(lifetimeForever), a.ValidLft)
	assert.Zero(t, a.PreferedLft, "deprecated")
}

// A zoned unicast_peer (fe80::1%eth0) matches adverts from fe80::1: the
// kernel's source addresses carry no zone.
func TestRunnerZonedPeer(t *testing.T) {
	conn := newFakeConn()
	conn.src, conn.dst = netip.MustParseAddr("fe80::2"), netip.MustParseAddr("fe80::1")
	vip := netip.MustParsePrefix("2001:db8::100/64")
	notes := make(chan Notify, 32)
	r, err := NewRunner(RunnerConfig{
		Instance:        Config{VRID: 51, Version: Version3, AdverInt: 50 * time.Millisecond},
		VIPs:            []netip.Prefix{vip},
		CheckUnicastSrc: true,
		Peers:           []UnicastPeer{{Addr: netip.MustParseAddr("fe80::1%eth0")}},
		Conn:            conn,
		OnNotify:        func(n Notify) { notes <- n },
		Logf:            t.Logf,
	})
	require.NoError(t, err)
	t.Cleanup(r.Stop)
	r.Start()
	waitState(t, notes, StateBackup, time.Second)
	adv := Advertisement{Version: Version3, Type: TypeAdvertisement, VRID: 51, Priority: 200, AdverInt: 5,
		Addresses: []netip.Addr{vip.Addr()}}
	for range 6 { // 300 ms, past the 170 ms down interval
		conn.inject(t, netip.MustParseAddr("fe80::1"), adv)
		time.Sleep(50 * time.Millisecond)
	}
	assert.Zero(t, r.Dropped())
	assert.Equal(t, StateBackup, r.State())
}
