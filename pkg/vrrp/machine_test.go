package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)

func newMachine(t *testing.T, cfg Config) *Machine {
	t.Helper()
	if cfg.VRID == 0 {
		cfg.VRID = 51
	}
	if !cfg.PrimaryIP.IsValid() {
		cfg.PrimaryIP = nodeA
	}
	m, err := NewMachine(cfg)
	require.NoError(t, err)
	return m
}

func advertFrom(m *Machine, prio uint8) Advertisement {
	cfg := m.Config()
	field, _ := AdverIntField(cfg.Version, cfg.AdverInt)
	return Advertisement{Version: cfg.Version, Type: 1, VRID: cfg.VRID, Priority: prio, AdverInt: field}
}

// masterAt makes m master at t by starting it one down interval earlier.
func masterAt(t *testing.T, m *Machine, at time.Time) {
	t.Helper()
	m.Start(at.Add(-MasterDownInterval(m.cfg.Version, m.Priority(), m.cfg.AdverInt, 0)))
	m.Timer(at)
	require.Equal(t, StateMaster, m.State())
}

func becameMaster(prio uint8) []Action {
	return []Action{SendAdvert{prio}, AddVIPs{}, SendGARP{5}, Notify{StateMaster, prio}}
}

func TestNewMachineConfig(t *testing.T) {
	m := newMachine(t, Config{})
	cfg := m.Config()
	assert.Equal(t, Version2, cfg.Version)
	assert.Equal(t, DefaultPriority, cfg.Priority)
	assert.Equal(t, time.Second, cfg.AdverInt)
	assert.Equal(t, 3, cfg.DownTimerAdverts)
	assert.Equal(t, 5*time.Second, cfg.GARPMasterDelay)
	assert.Equal(t, 5, cfg.GARPMasterRepeat)
	assert.Equal(t, StateInit, m.State())
	assert.True(t, m.NextDeadline().IsZero())

	owner := newMachine(t, Config{Priority: 255, NoPreempt: true})
	assert.False(t, owner.Config().NoPreempt, "an owner always preempts")

	for _, cfg := range []Config{
		{VRID: 0},
		{VRID: 1, Version: 2, AdverInt: 1500 * time.Millisecond},
		{VRID: 1, Version: 3, AdverInt: 5 * time.Millisecond},
		{VRID: 1, Version: 4},
		{VRID: 1, NoPreempt: true, PreemptDelay: time.Second},
		{VRID: 1, PreemptDelay: -time.Second},
	} {
		_, err := NewMachine(cfg)
		assert.ErrorIs(t, err, ErrConfig, "%+v", cfg)
	}
}

func TestMachineOwnerStartsMaster(t *testing.T) {
	m := newMachine(t, Config{Version: 3, Priority: 255, AdverInt: 500 * time.Millisecond})
	assert.Equal(t, becameMaster(255), m.Start(t0))
	assert.Equal(t, StateMaster, m.State())
	assert.Equal(t, t0.Add(500*time.Millisecond), m.NextDeadline())
	assert.Nil(t, m.Timer(t0.Add(499*time.Millisecond)))
	assert.Equal(t, []Action{SendAdvert{255}}, m.Timer(t0.Add(500*time.Millisecond)))
	assert.Nil(t, m.Start(t0), "already started")
	assert.Nil(t, m.SetEffectivePriority(t0, 100), "an owner keeps 255")
	assert.Equal(t, uint8(255), m.Priority())
}

func TestMachineBackupStartAndTakeover(t *testing.T) {
	m := newMachine(t, Config{})
	assert.Equal(t, []Action{Notify{StateBackup, 100}}, m.Start(t0))
	deadline := t0.Add(3_609_375 * us)
	assert.Equal(t, deadline, m.NextDeadline())
	assert.Nil(t, m.Timer(deadline.Add(-us)))
	assert.Equal(t, becameMaster(100), m.Timer(deadline))
	assert.Equal(t, deadline.Add(time.Second), m.NextDeadline())

	// A stalled caller gets one advert, not a burst.
	assert.Equal(t, []Action{SendAdvert{100}}, m.Timer(deadline.Add(3500*time.Millisecond)))
	assert.Equal(t, deadline.Add(4500*time.Millisecond), m.NextDeadline())
}

func TestMachineBackupRx(t *testing.T) {
	peer := mustAddr("192.168.77.9")
	t.Run("priority 0 means skew time", func(t *testing.T) {
		m := newMachine(t, Config{})
		m.Start(t0)
		now := t0.Add(time.Second)
		assert.Nil(t, m.Advert(now, peer, advertFrom(m, 0)))
		assert.Equal(t, now.Add(609_375*us), m.NextDeadline())
		assert.False(t, m.MasterAddr().IsValid(), "keepalived does not record a leaving master")
	})
	t.Run("higher priority resets the down timer", func(t *testing.T) {
		m := newMachine(t, Config{})
		m.Start(t0)
		now := t0.Add(3 * time.Second)
		m.Advert(now, peer, advertFrom(m, 150))
		assert.Equal(t, now.Add(3_609_375*us), m.NextDeadline())
		assert.Equal(t, peer, m.MasterAddr())
	})
	t.Run("equal priority is accepted", func(t *testing.T) {
		m := newMachine(t, Config{})
		m.Start(t0)
		now := t0.Add(3 * time.Second)
		m.Advert(now, peer, advertFrom(m, 100))
		assert.Equal(t, now.Add(3_609_375*us), m.NextDeadline())
	})
	t.Run("lower priority is discarded when preempting", func(t *testing.T) {
		m := newMachine(t, Config{})
		m.Start(t0)
		m.Advert(t0.Add(3*time.Second), peer, advertFrom(m, 50))
		assert.Equal(t, t0.Add(3_609_375*us), m.NextDeadline())
		assert.Equal(t, peer, m.MasterAddr(), "recorded even when discarded")
	})
	t.Run("lower priority is accepted with nopreempt", func(t *testing.T) {
		m := newMachine(t, Config{NoPreempt: true})
		m.Start(t0)
		now := t0.Add(3 * time.Second)
		m.Advert(now, peer, advertFrom(m, 50))
		assert.Equal(t, now.Add(3_609_375*us), m.NextDeadline())
	})
	t.Run("preempt_delay restarts when a higher priority is heard", func(t *testing.T) {
		m := newMachine(t, Config{PreemptDelay: 10 * time.Second})
		m.Start(t0)
		m.Advert(t0.Add(1*time.Second), peer, advertFrom(m, 50)) // timer to 11 s
		m.Advert(t0.Add(2*time.Second), peer, advertFrom(m, 150))
		m.Advert(t0.Add(12*time.Second), peer, advertFrom(m, 50)) // timer to 22 s
		m.Advert(t0.Add(21*time.Second), peer, advertFrom(m, 50))
		assert.Equal(t, t0.Add(24*time.Second+609_375*us), m.NextDeadline())
		m.Advert(t0.Add(22*time.Second), peer, advertFrom(m, 50)) // discarded
		assert.Equal(t, t0.Add(24*time.Second+609_375*us), m.NextDeadline())
	})
	t.Run("a held preemption accepts lower priorities until released", func(t *testing.T) {
		held := true
		m := newMachine(t, Config{PreemptHold: func(time.Time) bool { return held }})
		m.Start(t0)
		now := t0.Add(3 * time.Second)
		m.Advert(now, peer, advertFrom(m, 50))
		assert.Equal(t, now.Add(3_609_375*us), m.NextDeadline(), "accepted while held")
		held = false
		m.Advert(now.Add(time.Second), peer, advertFrom(m, 50))
		assert.Equal(t, now.Add(3_609_375*us), m.NextDeadline(), "discarded once released: the down timer runs on")
	})
	t.Run("v3 adopts the master's interval", func(t *testing.T) {
		m := newMachine(t, Config{Version: 3})
		m.Start(t0)
		adv := advertFrom(m, 150)
		adv.AdverInt = 50
		m.Advert(t0, peer, adv)
		assert.Equal(t, 500*time.Millisecond, m.MasterAdverInt())
		assert.Equal(t, t0.Add(1500*time.Millisecond+304_687*us), m.NextDeadline()) // 156·50·625/16 µs
		acts := m.Timer(m.NextDeadline())
		assert.Equal(t, becameMaster(100), acts)
		assert.Equal(t, time.Second, m.MasterAdverInt(), "a master advertises its own interval")
	})
	t.Run("other VRID or version ignored", func(t *testing.T) {
		m := newMachine(t, Config{})
		m.Start(t0)
		adv := advertFrom(m, 0)
		adv.VRID = 52
		m.Advert(t0, peer, adv)
		adv = advertFrom(m, 0)
		adv.Version = 3
		m.Advert(t0, peer, adv)
		assert.Equal(t, t0.Add(3_609_375*us), m.NextDeadline())
	})
}

func TestMachineMasterRx(t *testing.T) {
	higher, lower := mustAddr("192.168.77.3"), mustAddr("192.168.77.1")
	now := t0.Add(10 * time.Second)
	mk := func(t *testing.T, cfg Config) *Machine {
		m := newMachine(t, cfg) // primary 192.168.77.2
		masterAt(t, m, t0.Add(9500*time.Millisecond))
		return m
	}
	leave := []Action{RemoveVIPs{}, Notify{StateBackup, 100}}

	for _, tc := range []struct {
		name      string
		cfg       Config
		from      netip.Addr
		prio      uint8
		want      []Action
		state     State
		nextAdver time.Time // zero: the advert timer is not touched
	}{
		{"higher priority", Config{}, lower, 101, leave, StateBackup, time.Time{}},
		{"equal priority, higher address", Config{}, higher, 100, leave, StateBackup, time.Time{}},
		{"equal priority, lower address", Config{}, lower, 100, []Action{SendAdvert{100}}, StateMaster, now.Add(time.Second)},
		{"lower priority forces an election", Config{}, higher, 99, []Action{SendAdvert{100}}, StateMaster, now.Add(time.Second)},
		{"lower_prio_no_advert", Config{LowerPrioNoAdvert: true}, higher, 99, nil, StateMaster, t0.Add(10500 * time.Millisecond)},
		{"garp_lower_prio_repeat", Config{GARPLowerPrioRepeat: 2}, higher, 99, []Action{SendAdvert{100}, SendGARP{2}}, StateMaster, now.Add(time.Second)},
		{"priority 0 answered at once", Config{}, higher, 0, []Action{SendAdvert{100}}, StateMaster, now.Add(time.Second)},
		{"higher_prio_send_advert", Config{HigherPrioSendAdvert: true}, lower, 200,
			append([]Action{SendAdvert{100}}, leave...), StateBackup, time.Time{}},
		{"own address, equal priority", Config{}, nodeA, 100, nil, StateMaster, now.Add(time.Second)},
		{"IPv6 sender is not compared with an IPv4 primary", Config{}, nodeA6, 100, nil, StateMaster, now.Add(time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mk(t, tc.cfg)
			got := m.Advert(now, tc.from, advertFrom(m, tc.prio))
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.state, m.State())
			if tc.state == StateBackup {
				assert.Equal(t, now.Add(3_609_375*us), m.NextDeadline())
			} else {
				assert.Equal(t, tc.nextAdver, m.NextDeadline())
			}
		})
	}

	t.Run("two owners: the one hearing the other steps down to 254", func(t *testing.T) {
		m := newMachine(t, Config{Priority: 255})
		m.Start(t0)
		got := m.Advert(now, lower, advertFrom(m, 255))
		assert.Equal(t, []Action{RemoveVIPs{}, Notify{StateBackup, 254}}, got)
		assert.Equal(t, uint8(254), m.Priority())
		assert.Equal(t, now.Add(MasterDownInterval(2, 254, time.Second, 3)), m.NextDeadline())
	})
	t.Run("v3 master yielding adopts the new master's interval", func(t *testing.T) {
		m := newMachine(t, Config{Version: 3})
		masterAt(t, m, t0)
		adv := advertFrom(m, 200)
		adv.AdverInt = 200
		m.Advert(now, higher, adv)
		assert.Equal(t, 2*time.Second, m.MasterAdverInt())
		assert.Equal(t, now.Add(6*time.Second+1_218_750*us), m.NextDeadline()) // 156·200·625/16 µs
	})
}

func TestMachineFault(t *testing.T) {
	t.Run("backup", func(t *testing.T) {
		m := newMachine(t, Config{})
		m.Start(t0)
		assert.Equal(t, []Action{Notify{StateFault, 100}}, m.Fault(t0.Add(time.Second)))
		assert.Nil(t, m.Fault(t0.Add(time.Second)))
		assert.True(t, m.NextDeadline().IsZero())
		assert.Nil(t, m.Advert(t0.Add(2*time.Second), nodeB, advertFrom(m, 0)))
		assert.Nil(t, m.Timer(t0.Add(time.Hour)))
		assert.Equal(t, []Action{Notify{StateBackup, 100}}, m.Recover(t0.Add(10*time.Second)))
		assert.Equal(t, t0.Add(13_609_375*us), m.NextDeadline())
		assert.Nil(t, m.Recover(t0.Add(11*time.Second)))
	})
	t.Run("master sends priority 0", func(t *testing.T) {
		m := newMachine(t, Config{})
		masterAt(t, m, t0)
		assert.Equal(t, []Action{SendAdvert{0}, RemoveVIPs{}, Notify{StateFault, 100}}, m.Fault(t0.Add(time.Second)))
		assert.Equal(t, StateFault, m.State())
	})
	t.Run("before start", func(t *testing.T) {
		m := newMachine(t, Config{})
		assert.Nil(t, m.Fault(t0))
		assert.Equal(t, []Action{Notify{StateFault, 100}}, m.Start(t0))
		assert.Equal(t, []Action{Notify{StateBackup, 100}}, m.Recover(t0))
	})
	t.Run("owner recovers straight to master", func(t *testing.T) {
		m := newMachine(t, Config{Priority: 255})
		m.Start(t0)
		m.Fault(t0)
		assert.Equal(t, becameMaster(255), m.Recover(t0.Add(time.Second)))
	})
}

func TestMachineShutdown(t *testing.T) {
	m := newMachine(t, Config{})
	masterAt(t, m, t0)
	assert.Equal(t, []Action{SendAdvert{0}, RemoveVIPs{}, Notify{StateInit, 100}}, m.Shutdown(t0.Add(time.Second)))
	assert.Equal(t, StateInit, m.State())
	assert.True(t, m.NextDeadline().IsZero())
	assert.Nil(t, m.Shutdown(t0.Add(time.Second)))

	assert.Equal(t, []Action{Notify{StateBackup, 100}}, m.Start(t0.Add(2*time.Second)))
	assert.Equal(t, []Action{Notify{StateInit, 100}}, m.Shutdown(t0.Add(3*time.Second)))
}

func TestMachineGARP(t *testing.T) {
	t.Run("second batch after garp_master_delay", func(t *testing.T) {
		m := newMachine(t, Config{GARPMasterDelay: 4500 * time.Millisecond})
		masterAt(t, m, t0)
		var got []Action
		for at := time.Second; at <= 6*time.Second; at += 500 * time.Millisecond {
			for _, a := range m.Timer(t0.Add(at)) {
				if g, ok := a.(SendGARP); ok {
					assert.Equal(t, 4500*time.Millisecond, at)
					got = append(got, g)
				}
			}
		}
		assert.Equal(t, []Action{SendGARP{5}}, got)
	})
	t.Run("due together with an advert: GARP first", func(t *testing.T) {
		m := newMachine(t, Config{})
		masterAt(t, m, t0)
		for s := 1; s < 5; s++ {
			assert.Equal(t, []Action{SendAdvert{100}}, m.Timer(t0.Add(time.Duration(s)*time.Second)))
		}
		assert.Equal(t, []Action{SendGARP{5}, SendAdvert{100}}, m.Timer(t0.Add(5*time.Second)))
	})
	t.Run("none when no longer master", func(t *testing.T) {
		m := newMachine(t, Config{})
		masterAt(t, m, t0)
		for at := time.Second; at < 10*time.Second; at += 100 * time.Millisecond {
			if at%time.Second == 0 {
				m.Advert(t0.Add(at), nodeB, advertFrom(m, 200)) // a better master
			}
			for _, a := range m.Timer(t0.Add(at)) {
				assert.NotEqual(t, SendGARP{5}, a)
			}
		}
	})
	t.Run("garp_master_delay 0 disables the second batch", func(t *testing.T) {
		m := newMachine(t, Config{GARPMasterDelay: -1})
		masterAt(t, m, t0)
		assert.Equal(t, []Action{SendAdvert{100}}, m.Timer(t0.Add(5*time.Second)))
	})
	t.Run("garp_master_refresh rides on adverts", func(t *testing.T) {
		m := newMachine(t, Config{GARPMasterDelay: -1, GARPMasterRefresh: 2 * time.Second, GARPMasterRefreshRepeat: 3})
		masterAt(t, m, t0)
		var at []time.Duration
		for s := 1; s <= 8; s++ {
			for _, a := range m.Timer(t0.Add(time.Duration(s) * time.Second)) {
				if a == (SendGARP{3}) {
					at = append(at, time.Duration(s)*time.Second)
				}
			}
		}
		// Strictly after the refresh time, checked at each advert.
		assert.Equal(t, []time.Duration{3 * time.Second, 6 * time.Second}, at)
	})
}

func TestMachineSetEffectivePriority(t *testing.T) {
	t.Run("retimes a backup by the change in down interval", func(t *testing.T) {
		m := newMachine(t, Config{})
		m.Start(t0)
		m.Advert(t0, nodeB, advertFrom(m, 150))
		assert.Nil(t, m.SetEffectivePriority(t0.Add(time.Second), 200))
		assert.Equal(t, t0.Add(3_218_750*us), m.NextDeadline()) // 3 + 56/256 s
		assert.Nil(t, m.SetEffectivePriority(t0.Add(time.Second), 200), "no change")
	})
	t.Run("takes over at once if the new deadline has passed", func(t *testing.T) {
		m := newMachine(t, Config{})
		m.Start(t0)
		m.Advert(t0, nodeB, advertFrom(m, 150))
		acts := m.SetEffectivePriority(t0.Add(3500*time.Millisecond), 254)
		assert.Equal(t, becameMaster(254), acts)
	})
	t.Run("clamps to 1..254", func(t *testing.T) {
		m := newMachine(t, Config{})
		m.SetEffectivePriority(t0, 0)
		assert.Equal(t, uint8(1), m.Priority())
		m.SetEffectivePriority(t0, 255)
		assert.Equal(t, uint8(254), m.Priority())
	})
	t.Run("a master's adverts carry it", func(t *testing.T) {
		m := newMachine(t, Config{})
		masterAt(t, m, t0)
		m.SetEffectivePriority(t0, 90)
		assert.Equal(t, []Action{SendAdvert{90}}, m.Timer(t0.Add(time.Second)))
	})
}

func TestEffectivePriority(t *testing.T) {
	for _, tc := range []struct {
		name     string
		base     uint8
		trackers []Tracker
		want     uint8
		fault    bool
	}{
		{"none", 100, nil, 100, false},
		{"positive weight counts while OK", 100, []Tracker{{Weight: 10, Status: TrackOK}}, 110, false},
		{"positive weight nothing when failed", 100, []Tracker{{Weight: 10, Status: TrackFailed}}, 100, false},
		{"negative weight counts when failed", 100, []Tracker{{Weight: -30, Status: TrackFailed}}, 70, false},
		{"negative weight nothing while OK", 100, []Tracker{{Weight: -30, Status: TrackOK}}, 100, false},
		{"positive reverse subtracts while OK", 100, []Tracker{{Weight: 10, Reverse: true, Status: TrackOK}}, 90, false},
		{"init contributes nothing", 100, []Tracker{{Weight: -30}, {Weight: 10}}, 100, false},
		{"unweighted failure faults", 100, []Tracker{{Status: TrackFailed}}, 100, true},
		{"unweighted reverse success faults", 100, []Tracker{{Reverse: true, Status: TrackOK}}, 100, true},
		{"unweighted reverse failure is fine", 100, []Tracker{{Reverse: true, Status: TrackFailed}}, 100, false},
		{"unweighted init is not a fault", 100, []Tracker{{}}, 100, false},
		{"weights clamp to 253", 1, []Tracker{{Weight: 1000, Status: TrackOK}}, 254, false},
		{"owner keeps 255", 255, []Tracker{{Weight: -100, Status: TrackFailed}}, 255, false},
		{"owner can fault", 255, []Tracker{{Status: TrackFailed}}, 255, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, fault := EffectivePriority(tc.base, tc.trackers)
			assert.Equal(t, tc.want, p)
			assert.Equal(t, tc.fault, fault)
		})
	}
}

func TestStateString(t *testing.T) {
	assert.Equal(t, "MASTER", StateMaster.String())
	assert.Equal(t, "BACKUP", StateBackup.String())
	assert.Equal(t, "FAULT", StateFault.String())
	assert.Equal(t, "INIT", StateInit.String())
	assert.Equal(t, "PASS", AuthPass.String())
}

// track_file's arithmetic (keepalived.conf(5)): weight 0 makes any
// non-zero value a fault; otherwise value x weight, negated by reverse, is
// added, and below -253 is a fault.
func TestTrackFilePriority(t *testing.T) {
	for _, c := range []struct {
		value   int64
		weight  int
		reverse bool
		prio    uint8
		fault   bool
	}{
		{0, 0, false, 100, false},
		{3, 0, false, 100, true},
		{0, 0, true, 100, true},
		{3, 0, true, 100, false},
		{5, 2, false, 110, false},
		{-20, 2, false, 60, false},
		{-20, 2, true, 140, false},
		{0, 10, false, 100, false},
		{200, 1, false, 254, false},
		{-253, 1, false, 1, false},
		{-254, 1, false, 100, true},
		{-1, 254, false, 100, true},
		{1, 254, false, 254, false},
		{-1, 253, false, 1, false},
	} {
		var ts []Tracker
		if tr, ok := FileTracker(c.value, c.weight, c.reverse); ok {
			ts = append(ts, tr)
		}
		prio, fault := EffectivePriority(100, ts)
		assert.Equal(t, c.fault, fault, "%+v", c)
		if !c.fault {
			assert.Equal(t, c.prio, prio, "%+v", c)
		}
	}
}

// A MASTER handing off to the next process sends one last ordinary advert
// (its backups' master-down timers then run from the handoff) and nothing
// else: no priority-0 advert, no notification. A BACKUP sends nothing.
func TestHandoffSendsALastAdvert(t *testing.T) {
	m := newMachine(t, Config{Priority: 150, AdverInt: time.Second})
	masterAt(t, m, t0)
	was, acts := m.Handoff(t0.Add(500 * time.Millisecond))
	assert.True(t, was)
	assert.Equal(t, []Action{SendAdvert{150}}, acts)
	assert.Equal(t, StateInit, m.State())

	b := newMachine(t, Config{Priority: 100, AdverInt: time.Second})
	b.Start(t0)
	require.Equal(t, StateBackup, b.State())
	was, acts = b.Handoff(t0.Add(time.Second))
	assert.False(t, was)
	assert.Empty(t, acts)
}
