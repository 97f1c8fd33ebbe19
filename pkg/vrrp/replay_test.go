package vrrp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReplayKeepalived plays each capture against a Machine standing in for
// one of the two keepalived nodes: the other node's adverts are fed to it at
// their capture times, and it must send its adverts (same priority, same
// bytes) and its gratuitous ARP batches when keepalived did, within a few
// milliseconds of scheduling jitter, and never when keepalived did not.

// replayTolerance covers keepalived's scheduling jitter (≈0.3-3 ms in these
// captures); Machine re-syncs to keepalived's time at each advert it matches.
const replayTolerance = 15 * time.Millisecond

type replayStart int

const (
	startAtFirstAdvert replayStart = iota // the node was already running
	startAtIGMPJoin                       // the node starts when it joins 224.0.0.18
	primeMaster                           // the node becomes master at its first advert
)

type replayCase struct {
	file      string
	self      netip.Addr
	priority  uint8
	noPreempt bool
	start     replayStart
	final     State
	checkGARP bool // the capture holds the node's whole time as master
}

func TestReplayKeepalived(t *testing.T) {
	for _, rc := range []replayCase{
		{file: "v2-startup", self: nodeA, priority: 150, start: primeMaster, final: StateMaster, checkGARP: true},
		{file: "v2-startup", self: nodeB, priority: 100, start: startAtIGMPJoin, final: StateBackup},
		{file: "v2-failover-sigkill", self: nodeB, priority: 100, final: StateMaster, checkGARP: true},
		{file: "v3-failover-sigkill", self: nodeB, priority: 100, final: StateMaster, checkGARP: true},
		{file: "v2-failover-sigterm", self: nodeA, priority: 150, start: primeMaster, final: StateInit},
		{file: "v2-failover-sigterm", self: nodeB, priority: 100, final: StateMaster, checkGARP: true},
		{file: "v3-failover-sigterm", self: nodeA, priority: 150, start: primeMaster, final: StateInit},
		{file: "v3-failover-sigterm", self: nodeB, priority: 100, final: StateMaster, checkGARP: true},
		{file: "v2-preempt", self: nodeA, priority: 150, start: primeMaster, final: StateMaster, checkGARP: true},
		{file: "v2-preempt", self: nodeB, priority: 100, start: primeMaster, final: StateBackup},
		{file: "v3-preempt", self: nodeA, priority: 150, start: primeMaster, final: StateMaster, checkGARP: true},
		{file: "v3-preempt", self: nodeB, priority: 100, start: primeMaster, final: StateBackup},
		{file: "v3-preempt2", self: nodeA, priority: 150, start: primeMaster, final: StateMaster, checkGARP: true},
		{file: "v3-preempt2", self: nodeB, priority: 100, start: primeMaster, final: StateBackup},
		{file: "v2-nopreempt", self: nodeA, priority: 150, noPreempt: true, final: StateBackup},
		{file: "v2-nopreempt", self: nodeB, priority: 100, start: primeMaster, final: StateMaster},
		{file: "v3-nopreempt", self: nodeA, priority: 150, noPreempt: true, final: StateMaster, checkGARP: true},
		{file: "v3-nopreempt", self: nodeB, priority: 100, start: primeMaster, final: StateInit},
		{file: "v3-track-script-weight", self: nodeB, priority: 100, final: StateMaster, checkGARP: true},
		{file: "v2-unicast-A", self: nodeB, priority: 100, final: StateInit},
		{file: "v2-unicast-B", self: nodeB, priority: 100, final: StateInit},
		{file: "v3-unicast-A", self: nodeB, priority: 100, final: StateInit},
		{file: "v3-unicast-B", self: nodeB, priority: 100, final: StateInit},
		{file: "v2-authpass-3vips-vrid52", self: nodeA, priority: 200, start: primeMaster, final: StateInit, checkGARP: true},
		{file: "v3-advert50cs-vrid53-prio255", self: nodeA, priority: 255, final: StateInit, checkGARP: true},
		{file: "v3-ipv6-vrid54", self: nodeA6, priority: 150, start: primeMaster, final: StateInit},
		{file: "v3-ipv6-snooping-querier-pvC-sees-nothing", self: nodeA, priority: 150, start: primeMaster, final: StateMaster},
		{file: "v3-state-master-startup", self: nodeB, priority: 100, start: primeMaster, final: StateMaster},
		{file: "v3-startup", self: nodeA, priority: 150, start: primeMaster, final: StateMaster, checkGARP: true},
	} {
		node := "A"
		if rc.self == nodeB {
			node = "B"
		}
		t.Run(rc.file+"/"+node, func(t *testing.T) { replay(t, rc) })
	}
}

type replayed struct {
	at   time.Time
	prio uint8 // SendAdvert
	garp int   // SendGARP repeat
}

func replay(t *testing.T, rc replayCase) {
	local := captureLocal(t, rc.file)
	cfg := Config{
		VRID: local.VRID, Version: local.Version, Priority: rc.priority, AdverInt: local.AdverInt,
		NoPreempt: rc.noPreempt, PrimaryIP: rc.self,
	}
	m, err := NewMachine(cfg)
	require.NoError(t, err)

	pkts := readPcap(t, "testdata/"+rc.file+".pcap")
	var adverts []capturedPacket
	var selfMAC [6]byte // the namespaces, and so the MACs, change between captures
	for _, p := range pkts {
		if p.isVRRP() {
			adverts = append(adverts, p)
			if p.Src == rc.self {
				selfMAC = p.SrcMAC
			}
		}
	}
	require.NotEmpty(t, adverts)

	var start time.Time
	switch rc.start {
	case startAtFirstAdvert:
		start = adverts[0].Time
	case startAtIGMPJoin:
		for _, p := range pkts {
			if p.Proto == 2 && p.Src == rc.self {
				start = p.Time
				break
			}
		}
		require.False(t, start.IsZero(), "no IGMP join from %s", rc.self)
	case primeMaster:
		for _, p := range adverts {
			if p.Src == rc.self {
				start = p.Time.Add(-MasterDownInterval(cfg.Version, rc.priority, cfg.AdverInt, 0))
				break
			}
		}
	}

	var pending []replayed // adverts the machine sent, not yet seen in the capture
	var garps []replayed
	now := start
	do := func(at time.Time, acts []Action) {
		for _, a := range acts {
			switch a := a.(type) {
			case SendAdvert:
				pending = append(pending, replayed{at: at, prio: a.Priority})
			case SendGARP:
				garps = append(garps, replayed{at: at, garp: a.Repeat})
			}
		}
	}
	// fireUntil runs every deadline before limit.
	fireUntil := func(limit time.Time) {
		for {
			d := m.NextDeadline()
			if d.IsZero() || !d.Before(limit) {
				return
			}
			now = d
			do(d, m.Timer(d))
		}
	}
	noneBefore := func(limit time.Time, why string) {
		t.Helper()
		for len(pending) > 0 && pending[0].at.Before(limit) {
			t.Errorf("machine sent priority %d at %s; keepalived did not (%s)",
				pending[0].prio, pending[0].at.Format("05.000000"), why)
			pending = pending[1:]
		}
	}

	do(now, m.Start(now))
	last := adverts[len(adverts)-1].Time
	for i, p := range adverts {
		if p.Time.Before(start) {
			continue // before the node started
		}
		at := p.Time
		fireUntil(at.Add(-replayTolerance))
		noneBefore(at.Add(-replayTolerance), fmt.Sprintf("before packet %d", i))
		if now.Before(at) {
			now = at
		}

		if p.Src != rc.self {
			adv, err := Validate(p.PayloadEnd, PacketInfo{Src: p.Src, Dst: p.Dst, TTL: p.TTL, PayloadLen: len(p.Payload)}, local)
			require.NoError(t, err, "packet %d", i)
			do(now, m.Advert(now, p.Src, adv))
			continue
		}

		var adv Advertisement
		require.NoError(t, adv.UnmarshalBinary(p.Payload))
		if len(pending) == 0 {
			if adv.Priority == PriorityStop {
				do(now, m.Shutdown(now))
			} else {
				for len(pending) == 0 {
					d := m.NextDeadline()
					require.False(t, d.IsZero(), "keepalived sent packet %d at %s, machine has no deadline (state %v)",
						i, at.Format("05.000000"), m.State())
					require.False(t, d.After(at.Add(replayTolerance)),
						"keepalived sent packet %d at %s, machine not before %s", i, at.Format("05.000000"), d.Format("05.000000"))
					now = later(now, d) // re-sync to keepalived's clock
					do(now, m.Timer(now))
				}
			}
		}
		require.NotEmpty(t, pending, "packet %d", i)
		got := pending[0]
		pending = pending[1:]
		assert.Equal(t, adv.Priority, got.prio, "packet %d priority", i)
		assert.InDelta(t, 0, got.at.Sub(at).Seconds(), replayTolerance.Seconds(),
			"packet %d: keepalived at %s, machine at %s", i, at.Format("05.000000"), got.at.Format("05.000000"))

		// And the bytes are the ones keepalived sent.
		field, err := AdverIntField(cfg.Version, cfg.AdverInt)
		require.NoError(t, err)
		ours := Advertisement{Version: cfg.Version, Type: TypeAdvertisement, VRID: cfg.VRID, Priority: got.prio,
			AuthType: local.AuthType, AdverInt: field, Addresses: local.VIPs}
		if local.AuthType == AuthPass {
			ours.AuthData = local.AuthPass
		}
		assert.Equal(t, p.Payload, encode(t, ours, rc.self, p.Dst), "packet %d bytes", i)
	}
	fireUntil(last.Add(-replayTolerance))
	noneBefore(last.Add(-replayTolerance), "at the end")
	assert.Equal(t, rc.final, m.State())

	if rc.checkGARP {
		var want []replayed // batches of gratuitous ARPs from this node in the capture
		for _, p := range pkts {
			if p.ARPOp != 1 || !p.GratuitousARPForTarget || p.SrcMAC != selfMAC || p.Time.Before(start) {
				continue
			}
			if n := len(want); n > 0 && p.Time.Sub(want[n-1].at) < 50*time.Millisecond {
				want[n-1].garp++
				continue
			}
			want = append(want, replayed{at: p.Time, garp: 1})
		}
		var got []replayed
		for _, g := range garps {
			if !g.at.After(last) {
				got = append(got, replayed{at: g.at, garp: g.garp * len(local.VIPs)})
			}
		}
		require.Len(t, got, len(want), "gratuitous ARP batches: machine %v, keepalived %v", got, want)
		require.NotEmpty(t, want)
		for i := range want {
			assert.Equal(t, want[i].garp, got[i].garp, "batch %d size", i)
			assert.InDelta(t, 0, got[i].at.Sub(want[i].at).Seconds(), replayTolerance.Seconds(), "batch %d time", i)
		}
	}
	if !strings.Contains(rc.file, "ipv6") && rc.self.Is6() {
		t.Fatal("IPv6 node in an IPv4 capture")
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
