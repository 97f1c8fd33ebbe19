package vrrp

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Sync group members (Config.SyncGroup), as keepalived 2.2.7's vrrp_sync.c
// and vrrp_scheduler.c couple them: a member never goes MASTER on its own,
// it asks (WantMaster); SyncMaster and ForceBackup carry out the group's
// decision.

// mdi100 is Master_Down_Interval at priority 100, v2, 1 s.
const mdi100 = 3_609_375 * us

func TestMachineSyncGateHoldsTimedOutBackup(t *testing.T) {
	m := newMachine(t, Config{SyncGroup: true})
	assert.Equal(t, []Action{Notify{StateBackup, 100}}, m.Start(t0))
	assert.False(t, m.WantsMaster())

	expiry := t0.Add(mdi100)
	assert.Nil(t, m.Timer(expiry.Add(-us)))
	assert.Equal(t, []Action{WantMaster{}}, m.Timer(expiry), "held: no advert, no VIPs")
	assert.Equal(t, StateBackup, m.State())
	assert.True(t, m.WantsMaster())
	// keepalived re-arms ms_down_timer with a full interval and asks again
	// at the next expiry.
	assert.Equal(t, expiry.Add(mdi100), m.NextDeadline())
	assert.Nil(t, m.Timer(expiry.Add(mdi100-us)))
	assert.Equal(t, []Action{WantMaster{}}, m.Timer(expiry.Add(mdi100)))
	assert.Equal(t, expiry.Add(2*mdi100), m.NextDeadline())

	// A stalled caller gets one WantMaster, not one per missed interval.
	assert.Equal(t, []Action{WantMaster{}}, m.Timer(expiry.Add(10*mdi100)))
}

func TestMachineSyncWishFollowsAdverts(t *testing.T) {
	peer := mustAddr("192.168.77.9")
	wanting := func(t *testing.T, cfg Config) (*Machine, time.Time) {
		t.Helper()
		cfg.SyncGroup = true
		m := newMachine(t, cfg)
		m.Start(t0)
		now := t0.Add(mdi100)
		require.Equal(t, []Action{WantMaster{}}, m.Timer(now))
		return m, now.Add(time.Second)
	}
	t.Run("an accepted advert ends the wish", func(t *testing.T) {
		m, now := wanting(t, Config{})
		assert.Nil(t, m.Advert(now, peer, advertFrom(m, 150)))
		assert.False(t, m.WantsMaster())
		assert.Equal(t, now.Add(mdi100), m.NextDeadline())
		assert.Equal(t, []Action{WantMaster{}}, m.Timer(now.Add(mdi100)), "wants again once the master is silent")
	})
	t.Run("nopreempt accepts a lower priority", func(t *testing.T) {
		m, now := wanting(t, Config{NoPreempt: true})
		m.Advert(now, peer, advertFrom(m, 50))
		assert.False(t, m.WantsMaster())
	})
	t.Run("a discarded lower priority does not", func(t *testing.T) {
		m, now := wanting(t, Config{})
		m.Advert(now, peer, advertFrom(m, 50))
		assert.True(t, m.WantsMaster())
	})
	t.Run("priority 0 does not", func(t *testing.T) {
		m, now := wanting(t, Config{})
		m.Advert(now, peer, advertFrom(m, 0))
		assert.True(t, m.WantsMaster())
		assert.Equal(t, now.Add(609_375*us), m.NextDeadline(), "Skew_Time")
	})
}

func TestMachineSyncMaster(t *testing.T) {
	t.Run("releases a held backup at once", func(t *testing.T) {
		m := newMachine(t, Config{SyncGroup: true})
		m.Start(t0)
		m.Timer(t0.Add(mdi100))
		now := t0.Add(4 * time.Second)
		assert.Equal(t, becameMaster(100), m.SyncMaster(now))
		assert.Equal(t, StateMaster, m.State())
		assert.True(t, m.WantsMaster())
		assert.Equal(t, now.Add(time.Second), m.NextDeadline())
		assert.Nil(t, m.SyncMaster(now), "already master")
	})
	t.Run("forces a backup that does not want it", func(t *testing.T) {
		// keepalived's vrrp_sync_master calls vrrp_state_goto_master on
		// every member not yet MASTER, whatever its own timer says.
		m := newMachine(t, Config{SyncGroup: true})
		m.Start(t0)
		assert.Equal(t, becameMaster(100), m.SyncMaster(t0.Add(time.Second)))
	})
	t.Run("leaves other states alone", func(t *testing.T) {
		m := newMachine(t, Config{SyncGroup: true})
		assert.Nil(t, m.SyncMaster(t0), "INIT")
		m.Fault(t0)
		m.Start(t0)
		assert.Nil(t, m.SyncMaster(t0), "FAULT")
		assert.Equal(t, StateFault, m.State())
	})
}

func TestMachineForceBackup(t *testing.T) {
	m := newMachine(t, Config{SyncGroup: true})
	m.Start(t0)
	m.SyncMaster(t0.Add(time.Second))
	now := t0.Add(2 * time.Second)
	// No priority-0 advert: vrrp_sync_backup calls vrrp_state_leave_master
	// with advF false and wantstate BACKUP.
	assert.Equal(t, []Action{RemoveVIPs{}, Notify{StateBackup, 100}}, m.ForceBackup(now))
	assert.Equal(t, StateBackup, m.State())
	assert.False(t, m.WantsMaster())
	assert.Equal(t, now.Add(mdi100), m.NextDeadline(), "a full down timer")
	assert.Nil(t, m.ForceBackup(now), "already backup")
	assert.Equal(t, []Action{WantMaster{}}, m.Timer(now.Add(mdi100)))

	plain := newMachine(t, Config{})
	masterAt(t, plain, t0)
	assert.Equal(t, []Action{RemoveVIPs{}, Notify{StateBackup, 100}}, plain.ForceBackup(t0.Add(time.Second)))
	assert.Equal(t, becameMaster(100), plain.Timer(t0.Add(time.Second+mdi100)), "outside a group: master on its own")
}

func TestMachineSyncOwner(t *testing.T) {
	m := newMachine(t, Config{SyncGroup: true, Priority: 255})
	assert.Equal(t, []Action{Notify{StateBackup, 255}, WantMaster{}}, m.Start(t0))
	assert.True(t, m.WantsMaster())
	assert.Equal(t, becameMaster(255), m.SyncMaster(t0))

	m.Fault(t0.Add(time.Second))
	assert.False(t, m.WantsMaster())
	assert.Equal(t, []Action{Notify{StateBackup, 255}, WantMaster{}}, m.Recover(t0.Add(2*time.Second)))
}

func TestMachineSyncPriorityRaisePastDeadline(t *testing.T) {
	m := newMachine(t, Config{SyncGroup: true, PrimaryIP: nodeA})
	m.Start(t0)
	// A lower skew moves the deadline before now: the expiry asks.
	assert.Equal(t, []Action{WantMaster{}}, m.SetEffectivePriority(t0.Add(3_500*time.Millisecond), 254))
	assert.Equal(t, StateBackup, m.State())
}

// syncPair couples two Runners as pkg/director does, in the small: a
// member may go MASTER when every other one wants to, and the others are
// then made MASTER too.
type syncPair struct {
	mu sync.Mutex
	rs [2]*Runner
}

func (p *syncPair) canGoMaster(self int) func() bool {
	return func() bool {
		p.mu.Lock()
		other := p.rs[1-self]
		p.mu.Unlock()
		if other == nil || !other.WantsMaster() {
			return false
		}
		go other.SyncMaster() // never from inside the asking Runner's goroutine
		return true
	}
}

func TestRunnerSyncPair(t *testing.T) {
	p := &syncPair{}
	var conns [2]*fakeConn
	var vips [2]*fakeVIPs
	var notes [2]chan Notify
	for i := range 2 {
		conns[i], vips[i], notes[i] = newFakeConn(), &fakeVIPs{}, make(chan Notify, 32)
		n := notes[i]
		r, err := NewRunner(RunnerConfig{
			Instance: Config{VRID: uint8(51 + i), Version: Version3, AdverInt: 50 * time.Millisecond,
				GARPMasterDelay: -1, SyncGroup: true},
			VIPs:        []netip.Prefix{testVIP},
			Conn:        conns[i],
			Addrs:       vips[i],
			OnNotify:    func(x Notify) { n <- x },
			CanGoMaster: p.canGoMaster(i),
			Logf:        t.Logf,
		})
		require.NoError(t, err)
		t.Cleanup(r.Stop)
		p.rs[i] = r
	}
	peer := netip.MustParseAddr("10.0.0.1")
	adv := Advertisement{Version: Version3, Type: TypeAdvertisement, VRID: 51, Priority: 200,
		AdverInt: 5, Addresses: []netip.Addr{testVIP.Addr()}}
	hear := func(prio uint8) {
		a := adv
		a.Priority = prio
		conns[0].inject(t, peer, a)
	}
	hear(200)
	for i := range 2 {
		p.rs[i].Start()
		waitState(t, notes[i], StateBackup, time.Second)
	}
	// Member 0 hears a better master; member 1 hears nobody, wants
	// MASTER (down interval ~170 ms), and is held.
	for range 10 {
		hear(200)
		time.Sleep(50 * time.Millisecond)
	}
	assert.Equal(t, StateBackup, p.rs[1].State())
	assert.True(t, p.rs[1].WantsMaster())
	assert.False(t, p.rs[0].WantsMaster())
	assert.False(t, vips[1].has(testVIP))

	// The master leaves: member 0 wants MASTER after Skew_Time and the
	// pair goes MASTER together.
	hear(PriorityStop)
	waitState(t, notes[0], StateMaster, time.Second)
	waitState(t, notes[1], StateMaster, time.Second)
	assert.True(t, vips[0].has(testVIP))
	assert.True(t, vips[1].has(testVIP))
}
