package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A simulated LAN of Machines with a fake clock: every SendAdvert is encoded,
// checksummed, validated by every other live node and delivered at the same
// instant.

type simNode struct {
	name     string
	addr     netip.Addr
	m        *Machine
	vips     []netip.Addr
	trackers []Tracker
	dead     bool
}

type simEvent struct {
	at    time.Duration // since the start of the simulation
	node  string
	state State // for a transition
	prio  uint8 // for an advert
	garp  int   // for a SendGARP
}

type sim struct {
	t      *testing.T
	t0     time.Time
	now    time.Time
	nodes  []*simNode
	states []simEvent
	sent   []simEvent
	garps  []simEvent
	queue  []simDelivery
}

type simDelivery struct {
	from *simNode
	wire []byte
}

func newSim(t *testing.T) *sim {
	t0 := time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)
	return &sim{t: t, t0: t0, now: t0}
}

func (s *sim) add(name string, addr netip.Addr, cfg Config, trackers ...Tracker) *simNode {
	s.t.Helper()
	cfg.PrimaryIP = addr
	m, err := NewMachine(cfg)
	require.NoError(s.t, err)
	n := &simNode{name: name, addr: addr, m: m, vips: []netip.Addr{mustAddr("192.168.77.100")}, trackers: trackers}
	p, fault := EffectivePriority(cfg.Priority, trackers)
	require.False(s.t, fault)
	m.SetEffectivePriority(s.now, p)
	s.nodes = append(s.nodes, n)
	return n
}

func (s *sim) at() time.Duration { return s.now.Sub(s.t0) }

func (s *sim) apply(n *simNode, acts []Action) {
	s.t.Helper()
	for _, a := range acts {
		switch a := a.(type) {
		case SendAdvert:
			cfg := n.m.Config()
			field, err := AdverIntField(cfg.Version, cfg.AdverInt)
			require.NoError(s.t, err)
			adv := Advertisement{Version: cfg.Version, Type: TypeAdvertisement, VRID: cfg.VRID,
				Priority: a.Priority, AdverInt: field, Addresses: n.vips}
			s.sent = append(s.sent, simEvent{at: s.at(), node: n.name, prio: a.Priority})
			s.queue = append(s.queue, simDelivery{from: n, wire: encode(s.t, adv, n.addr, MulticastGroup4)})
		case Notify:
			s.states = append(s.states, simEvent{at: s.at(), node: n.name, state: a.State})
		case SendGARP:
			s.garps = append(s.garps, simEvent{at: s.at(), node: n.name, garp: a.Repeat})
		}
	}
}

func (s *sim) drain() {
	s.t.Helper()
	for len(s.queue) > 0 {
		d := s.queue[0]
		s.queue = s.queue[1:]
		for _, n := range s.nodes {
			if n == d.from || n.dead {
				continue
			}
			cfg := n.m.Config()
			local := Local{Version: cfg.Version, VRID: cfg.VRID, AdverInt: cfg.AdverInt, VIPs: n.vips}
			adv, err := Validate(d.wire, PacketInfo{Src: d.from.addr, Dst: MulticastGroup4, TTL: TTL}, local)
			require.NoError(s.t, err)
			s.apply(n, n.m.Advert(s.now, d.from.addr, adv))
		}
	}
}

// do runs an event on node n now.
func (s *sim) do(n *simNode, event func(now time.Time) []Action) {
	s.t.Helper()
	s.apply(n, event(s.now))
	s.drain()
}

// setTracker changes a tracker of n and feeds the result to its machine the
// way the daemon will: priority first, then fault or recovery.
func (s *sim) setTracker(n *simNode, i int, status TrackStatus) {
	s.t.Helper()
	n.trackers[i].Status = status
	p, fault := EffectivePriority(n.m.Config().Priority, n.trackers)
	s.do(n, func(now time.Time) []Action { return n.m.SetEffectivePriority(now, p) })
	switch {
	case fault:
		s.do(n, n.m.Fault)
	case n.m.State() == StateFault:
		s.do(n, n.m.Recover)
	}
}

// run advances the clock to at, firing every deadline on the way in order.
func (s *sim) run(at time.Duration) {
	s.t.Helper()
	end := s.t0.Add(at)
	for {
		var next *simNode
		var nd time.Time
		for _, n := range s.nodes {
			if n.dead {
				continue
			}
			if d := n.m.NextDeadline(); !d.IsZero() && !d.After(end) && (next == nil || d.Before(nd)) {
				next, nd = n, d
			}
		}
		if next == nil {
			s.now = end
			return
		}
		require.False(s.t, nd.Before(s.now), "deadline in the past")
		s.now = nd
		s.apply(next, next.m.Timer(nd))
		s.drain()
	}
}

// transitions of node since from.
func (s *sim) transitions(node string, from time.Duration) []simEvent {
	var out []simEvent
	for _, e := range s.states {
		if e.node == node && e.at >= from {
			out = append(out, simEvent{at: e.at, node: node, state: e.state})
		}
	}
	return out
}

// adverts sent by node in [from, to).
func (s *sim) adverts(node string, from, to time.Duration) []simEvent {
	var out []simEvent
	for _, e := range s.sent {
		if e.node == node && e.at >= from && e.at < to {
			out = append(out, e)
		}
	}
	return out
}

func (s *sim) lastAdvert(node string, before time.Duration) simEvent {
	s.t.Helper()
	a := s.adverts(node, 0, before)
	require.NotEmpty(s.t, a, "no advert from %s before %v", node, before)
	return a[len(a)-1]
}
