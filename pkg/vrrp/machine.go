package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// keepalived defaults the Config zero values stand for.
const (
	DefaultPriority          uint8 = 100
	DefaultAdverInt                = time.Second
	DefaultGARPMasterDelay         = 5 * time.Second
	DefaultGARPMasterRepeat        = 5
	DefaultGARPRefreshRepeat       = 1
)

// ErrConfig is wrapped by NewMachine for a configuration it cannot run.
var ErrConfig = errors.New("bad vrrp instance config")

// State is a VRRP state (RFC 9568 §6.4) plus keepalived's FAULT.
type State uint8

const (
	// StateInit is before Start and after Shutdown. A Notify carrying it
	// reports the instance stopping (keepalived's STOP).
	StateInit State = iota
	StateBackup
	StateMaster
	// StateFault is keepalived's fourth state: a tracked interface is down,
	// an unweighted tracker failed, or there is no source address.
	StateFault
)

// String returns the state as keepalived logs it.
func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Action is something the caller must do for the Machine, in the order given.
type Action interface{ action() }

// SendAdvert asks for an advertisement with this priority to be sent now.
type SendAdvert struct{ Priority uint8 }

// SendGARP asks for Repeat gratuitous ARPs (IPv4) or unsolicited neighbour
// advertisements (IPv6) for each VIP.
type SendGARP struct{ Repeat int }

// AddVIPs asks for the virtual addresses to be configured.
type AddVIPs struct{}

// RemoveVIPs asks for the virtual addresses to be removed.
type RemoveVIPs struct{}

// Notify reports a state transition (keepalived notify scripts and FIFO) and
// the effective priority at the time.
type Notify struct {
	State    State
	Priority uint8
}

// WantMaster reports that a sync group member would become MASTER now (its
// down timer ran out, or an owner started) but, being held by its group,
// stays BACKUP. The caller asks the group, keepalived's
// vrrp_sync_can_goto_master, and calls SyncMaster if the group may go
// MASTER. It comes again each Master_Down_Interval while the wish lasts.
type WantMaster struct{}

func (SendAdvert) action() {}
func (SendGARP) action()   {}
func (AddVIPs) action()    {}
func (RemoveVIPs) action() {}
func (Notify) action()     {}
func (WantMaster) action() {}

// Config is one keepalived vrrp_instance, as far as the state machine cares.
// Zero values mean keepalived's defaults unless said otherwise.
type Config struct {
	VRID    uint8 // 1..255, required
	Version uint8 // 2 or 3; zero means 2, keepalived's default

	// Priority is the base priority, 1..255; 255 makes this the address
	// owner, which goes MASTER at once and ignores preemption settings.
	// Zero means 100.
	Priority uint8

	// AdverInt is advert_int: whole seconds for v2, a multiple of 10 ms for
	// v3. Zero means 1 s.
	AdverInt time.Duration

	// NoPreempt is nopreempt: a backup accepts lower-priority adverts.
	NoPreempt bool
	// PreemptDelay is preempt_delay: a backup accepts lower-priority adverts
	// for this long after the first one, then preempts.
	PreemptDelay time.Duration
	// PreemptHold, when set, holds preemption while it returns true: a
	// backup accepts lower-priority adverts as under nopreempt (xlb's sync
	// gate: its flow table is not yet current). A master that stops
	// advertising is still taken over from.
	PreemptHold func(now time.Time) bool

	// LowerPrioNoAdvert is lower_prio_no_advert: a master does not answer a
	// lower-priority advert with one of its own.
	LowerPrioNoAdvert bool
	// HigherPrioSendAdvert is higher_prio_send_advert: a master sends one
	// more advert before yielding to a higher-priority one.
	HigherPrioSendAdvert bool

	// PrimaryIP is the address adverts are sent from. It breaks ties between
	// equal priorities: the higher address wins.
	PrimaryIP netip.Addr

	// DownTimerAdverts is down_timer_adverts. Zero means 3.
	DownTimerAdverts int

	// GARPMasterDelay is garp_master_delay, when the second batch of
	// gratuitous ARPs goes out after becoming master. Zero means 5 s;
	// negative means no second batch (keepalived's 0).
	GARPMasterDelay time.Duration
	// GARPMasterRepeat is garp_master_repeat. Zero means 5.
	GARPMasterRepeat int
	// GARPMasterRefresh is garp_master_refresh; zero means off.
	GARPMasterRefresh time.Duration
	// GARPMasterRefreshRepeat is garp_master_refresh_repeat. Zero means 1.
	GARPMasterRefreshRepeat int
	// GARPLowerPrioRepeat is garp_lower_prio_repeat: gratuitous ARPs a master
	// sends when it hears a lower priority. Zero means none.
	GARPLowerPrioRepeat int

	// SyncGroup makes the instance a member of a vrrp_sync_group, which
	// goes MASTER only when every member wants to. The instance never
	// becomes MASTER on its own: where it would, it stays BACKUP wanting
	// MASTER and returns WantMaster. SyncMaster and ForceBackup carry out
	// the group's decisions.
	SyncGroup bool
}

func (c *Config) normalize() error {
	if c.VRID == 0 {
		return fmt.Errorf("%w: virtual_router_id must be 1..255", ErrConfig)
	}
	if c.Version == 0 {
		c.Version = Version2
	}
	if c.Priority == 0 {
		c.Priority = DefaultPriority
	}
	if c.AdverInt == 0 {
		c.AdverInt = DefaultAdverInt
	}
	if _, err := AdverIntField(c.Version, c.AdverInt); err != nil {
		return fmt.Errorf("%w: advert_int: %w", ErrConfig, err)
	}
	if c.NoPreempt && c.PreemptDelay > 0 {
		return fmt.Errorf("%w: nopreempt and preempt_delay are mutually exclusive", ErrConfig)
	}
	if c.PreemptDelay < 0 {
		return fmt.Errorf("%w: negative preempt_delay %v", ErrConfig, c.PreemptDelay)
	}
	if c.Priority == PriorityOwner {
		// An owner is always master; keepalived clears these for it.
		c.NoPreempt, c.PreemptDelay = false, 0
	}
	if c.DownTimerAdverts <= 0 {
		c.DownTimerAdverts = DefaultDownTimerAdverts
	}
	switch {
	case c.GARPMasterDelay == 0:
		c.GARPMasterDelay = DefaultGARPMasterDelay
	case c.GARPMasterDelay < 0:
		c.GARPMasterDelay = 0
	}
	if c.GARPMasterRepeat <= 0 {
		c.GARPMasterRepeat = DefaultGARPMasterRepeat
	}
	if c.GARPMasterRefreshRepeat <= 0 {
		c.GARPMasterRefreshRepeat = DefaultGARPRefreshRepeat
	}
	return nil
}

// Machine is the VRRP state machine of one virtual router (RFC 9568 §6.4)
// with keepalived's behaviour where the two differ. It does no I/O and reads
// no clock: every event carries now, every event returns the actions to take,
// and NextDeadline says when to call Timer. It is not safe for concurrent use.
//
// Timing follows keepalived's variables: msDownTimer is the down timer length
// last set, sands the deadline it produced (the advert timer while master).
type Machine struct {
	cfg Config

	state State
	fault bool

	base, eff      uint8
	masterAdverInt time.Duration
	msDownTimer    time.Duration
	sands          time.Time
	preemptTime    time.Time // zero: preempt_delay timer not running
	garpAt         time.Time // delayed gratuitous ARP batch
	garpRefreshAt  time.Time

	masterAddr netip.Addr
	masterPrio uint8

	// wantMaster is keepalived's wantstate MASTER for a sync group member
	// held in BACKUP.
	wantMaster bool
}

// NewMachine returns a Machine in StateInit. Start it.
func NewMachine(cfg Config) (*Machine, error) {
	if err := cfg.normalize(); err != nil {
		return nil, fmt.Errorf("vrrp instance vrid %d: %w", cfg.VRID, err)
	}
	return &Machine{
		cfg:            cfg,
		base:           cfg.Priority,
		eff:            cfg.Priority,
		masterAdverInt: cfg.AdverInt,
	}, nil
}

// Config returns the configuration with defaults filled in.
func (m *Machine) Config() Config { return m.cfg }

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Priority returns the effective priority, what adverts carry.
func (m *Machine) Priority() uint8 { return m.eff }

// WantsMaster is keepalived's wantstate == MASTER, what a sync group asks
// of its members: MASTER, or BACKUP held by the group after the down timer
// ran out with no advert accepted since.
func (m *Machine) WantsMaster() bool {
	return m.state == StateMaster || (m.state == StateBackup && m.wantMaster)
}

// MasterAddr is the sender of the last advert a backup accepted or discarded
// for priority (keepalived's master_saddr), for Local.MasterAddr.
func (m *Machine) MasterAddr() netip.Addr { return m.masterAddr }

// MasterAdverInt is Master_Adver_Interval: ours, or while backup in v3 the
// interval the master advertises.
func (m *Machine) MasterAdverInt() time.Duration { return m.masterAdverInt }

// NextDeadline is when Timer must next be called: the down timer while
// backup, the advert timer (or a pending gratuitous ARP batch) while master.
// It is the zero Time in INIT and FAULT.
func (m *Machine) NextDeadline() time.Time {
	switch m.state {
	case StateBackup:
		return m.sands
	case StateMaster:
		if !m.garpAt.IsZero() && m.garpAt.Before(m.sands) {
			return m.garpAt
		}
		return m.sands
	}
	return time.Time{}
}

func (m *Machine) skew() time.Duration {
	return SkewTime(m.cfg.Version, m.eff, m.masterAdverInt)
}

func (m *Machine) downInterval() time.Duration {
	return MasterDownInterval(m.cfg.Version, m.eff, m.masterAdverInt, m.cfg.DownTimerAdverts)
}

func (m *Machine) owner() bool { return m.base == PriorityOwner }

// Start leaves INIT (RFC 9568 §6.4.1): an address owner becomes master at
// once, anyone else becomes backup with the down timer at
// Master_Down_Interval. keepalived's "state MASTER" does not shorten that
// wait for a non-owner outside a sync group, so there is no such option. If
// Fault was reported before Start, the machine starts in FAULT. An owner in
// a sync group starts BACKUP wanting MASTER (WantMaster).
func (m *Machine) Start(now time.Time) []Action { return m.leaveInit(now, m.owner()) }

// Resume leaves INIT as MASTER at once: this director was MASTER a moment
// ago in a process that handed over to this one (Handoff), its VIPs still
// on the interface and its peers still BACKUP (they heard it less than a
// master-down interval ago). It advertises at once, as a new master does.
// FAULT, if reported, wins.
func (m *Machine) Resume(now time.Time) []Action { return m.leaveInit(now, true) }

// leaveInit is Start and Resume: FAULT if reported, else MASTER or
// BACKUP as master says.
func (m *Machine) leaveInit(now time.Time, master bool) []Action {
	if m.state != StateInit {
		return nil
	}
	m.masterAdverInt = m.cfg.AdverInt
	m.preemptTime = time.Time{}
	if m.fault {
		m.state = StateFault
		return []Action{Notify{StateFault, m.eff}}
	}
	if master {
		return m.toMaster(now)
	}
	return m.enterBackup(now)
}

// Handoff ends the machine for the next process to Resume: no
// priority-0 advert, the VIPs stay, no notification (the director goes
// on as it was). A MASTER sends one last ordinary advert as it leaves, so
// that its backups' master-down timers (3 advert intervals and their
// skew) run from the handoff, not from up to an interval before it: the
// next process has that long to resume. It reports whether the machine
// was MASTER, and the actions.
func (m *Machine) Handoff(now time.Time) (wasMaster bool, acts []Action) {
	wasMaster = m.state == StateMaster
	if wasMaster {
		acts = []Action{SendAdvert{m.eff}}
	}
	m.state = StateInit
	m.sands, m.garpAt, m.preemptTime = time.Time{}, time.Time{}, time.Time{}
	return wasMaster, acts
}

func (m *Machine) enterBackup(now time.Time) []Action {
	m.state = StateBackup
	m.wantMaster = false
	m.preemptTime = time.Time{}
	m.msDownTimer = m.downInterval()
	m.sands = now.Add(m.msDownTimer)
	return []Action{Notify{StateBackup, m.eff}}
}

// becomeMaster is keepalived's goto_master: advert first (so the old master
// drops the VIPs before our GARPs), then VIPs, GARPs and the notification.
func (m *Machine) becomeMaster(now time.Time) []Action {
	m.state = StateMaster
	m.masterAdverInt = m.cfg.AdverInt
	m.sands = now.Add(m.cfg.AdverInt)
	m.garpAt = time.Time{}
	if m.cfg.GARPMasterDelay > 0 {
		m.garpAt = now.Add(m.cfg.GARPMasterDelay)
	}
	if m.cfg.GARPMasterRefresh > 0 {
		m.garpRefreshAt = now.Add(m.cfg.GARPMasterRefresh)
	}
	return []Action{
		SendAdvert{m.eff},
		AddVIPs{},
		SendGARP{m.cfg.GARPMasterRepeat},
		Notify{StateMaster, m.eff},
	}
}

// toMaster is every way to MASTER except SyncMaster. A sync group member
// only records the wish and stays BACKUP, as keepalived's
// vrrp_state_goto_master does when vrrp_sync_can_goto_master says no: the
// down timer is re-armed with a full Master_Down_Interval, so the group is
// asked again at each expiry.
func (m *Machine) toMaster(now time.Time) []Action {
	if !m.cfg.SyncGroup {
		return m.becomeMaster(now)
	}
	var acts []Action
	if m.state != StateBackup {
		acts = m.enterBackup(now)
	}
	m.wantMaster = true
	m.msDownTimer = m.downInterval()
	m.sands = now.Add(m.msDownTimer)
	return append(acts, WantMaster{})
}

// leaveMaster yields to a better master (keepalived's leave_master with
// wantstate BACKUP and no priority-0 advert).
func (m *Machine) leaveMaster(now time.Time) []Action {
	m.garpAt = time.Time{}
	return append([]Action{RemoveVIPs{}}, m.enterBackup(now)...)
}

// Timer handles every deadline that has passed by now: the down timer
// expiring makes a backup master (in a sync group: WantMaster); the advert
// timer makes a master advertise; a pending gratuitous ARP batch goes out.
// Calling it early does nothing.
func (m *Machine) Timer(now time.Time) []Action {
	var acts []Action
	for {
		switch m.state {
		case StateBackup:
			if now.Before(m.sands) {
				return acts
			}
			acts = append(acts, m.toMaster(now)...)
		case StateMaster:
			garpDue := !m.garpAt.IsZero() && !now.Before(m.garpAt)
			advertDue := !now.Before(m.sands)
			switch {
			case garpDue && (!advertDue || !m.garpAt.After(m.sands)):
				m.garpAt = time.Time{}
				acts = append(acts, SendGARP{m.cfg.GARPMasterRepeat})
			case advertDue:
				// Missed intervals are not made up: one advert, and the
				// next one an interval from now, as keepalived does.
				acts = append(acts, SendAdvert{m.eff})
				if m.cfg.GARPMasterRefresh > 0 && now.After(m.garpRefreshAt) {
					acts = append(acts, SendGARP{m.cfg.GARPMasterRefreshRepeat})
					m.garpRefreshAt = now.Add(m.cfg.GARPMasterRefresh)
				}
				m.sands = now.Add(m.cfg.AdverInt)
			default:
				return acts
			}
		default:
			return acts
		}
	}
}

// Advert handles an advert from the primary address from that passed
// Validate. Adverts for another VRID or version, and any advert in INIT or
// FAULT, are ignored.
func (m *Machine) Advert(now time.Time, from netip.Addr, adv Advertisement) []Action {
	if adv.VRID != m.cfg.VRID || adv.Version != m.cfg.Version {
		return nil
	}
	switch m.state {
	case StateBackup:
		m.backupRx(now, from, adv)
		m.sands = now.Add(m.msDownTimer)
		return nil
	case StateMaster:
		acts, leave := m.masterRx(from, adv)
		if leave {
			return append(acts, m.leaveMaster(now)...)
		}
		if !m.cfg.LowerPrioNoAdvert {
			// keepalived restarts the advert timer after every advert it
			// reads while master ("if we have sent an advert").
			m.sands = now.Add(m.cfg.AdverInt)
		}
		return acts
	}
	return nil
}

// backupRx is RFC 9568 §6.4.2 as keepalived's vrrp_state_backup does it.
func (m *Machine) backupRx(now time.Time, from netip.Addr, adv Advertisement) {
	switch {
	case adv.Priority == PriorityStop:
		// The master is leaving: take over after Skew_Time only.
		m.msDownTimer = m.skew()
	case m.cfg.NoPreempt || adv.Priority >= m.eff ||
		(m.cfg.PreemptDelay > 0 && (m.preemptTime.IsZero() || m.preemptTime.After(now))) ||
		(m.cfg.PreemptHold != nil && m.cfg.PreemptHold(now)):
		if m.cfg.Version == Version3 {
			m.masterAdverInt = adv.Interval()
		}
		m.msDownTimer = m.downInterval()
		m.masterAddr, m.masterPrio = from, adv.Priority
		// A sync group member held in BACKUP hears a master again: it no
		// longer wants MASTER (keepalived's vrrp_state_backup).
		m.wantMaster = false
		if m.cfg.PreemptDelay > 0 {
			if adv.Priority >= m.eff {
				m.preemptTime = time.Time{}
			} else if m.preemptTime.IsZero() {
				m.preemptTime = now.Add(m.cfg.PreemptDelay)
			}
		}
	default:
		// Preempting a lower priority: discard the advert, so the down timer
		// keeps running from the last advert accepted.
		m.masterAddr = from
		m.msDownTimer = max(m.sands.Sub(now), 0)
	}
}

// masterRx is RFC 9568 §6.4.3 as keepalived's vrrp_state_master_rx does it;
// leave reports that a better master exists.
func (m *Machine) masterRx(from netip.Addr, adv Advertisement) (acts []Action, leave bool) {
	cmp := 0 // keepalived compares addresses of one family only
	if from.IsValid() && m.cfg.PrimaryIP.IsValid() && from.Is4() == m.cfg.PrimaryIP.Is4() {
		cmp = from.Compare(m.cfg.PrimaryIP)
	}
	higher := adv.Priority > m.eff || (adv.Priority == m.eff && cmp > 0)

	if adv.Priority == PriorityStop || (m.cfg.HigherPrioSendAdvert && higher) {
		acts = append(acts, SendAdvert{m.eff})
		if adv.Priority == PriorityStop {
			return acts, false
		}
	}
	if adv.Priority == m.eff && cmp != 0 && m.eff == PriorityOwner {
		// Two address owners: keepalived reports a configuration error and
		// steps this one down so that one of them wins.
		m.base, m.eff = PriorityOwner-1, PriorityOwner-1
		higher = true
	}
	if !higher {
		if adv.Priority == m.eff && cmp == 0 {
			return acts, false // our own address: keepalived only warns
		}
		// A lower priority thinks it is master: force a new election.
		if !m.cfg.LowerPrioNoAdvert {
			acts = append(acts, SendAdvert{m.eff})
		}
		if m.cfg.GARPLowerPrioRepeat > 0 {
			acts = append(acts, SendGARP{m.cfg.GARPLowerPrioRepeat})
		}
		return acts, false
	}
	if m.cfg.Version == Version3 {
		m.masterAdverInt = adv.Interval()
	}
	m.masterPrio = adv.Priority
	return acts, true
}

// SetEffectivePriority sets the priority computed by EffectivePriority. An
// owner keeps 255. As in keepalived, a backup's down timer is re-timed by the
// change in Master_Down_Interval; if that puts it in the past, the takeover
// happens now.
func (m *Machine) SetEffectivePriority(now time.Time, p uint8) []Action {
	if m.owner() {
		return nil
	}
	p = min(max(p, 1), PriorityOwner-1)
	if p == m.eff {
		return nil
	}
	m.eff = p
	old := m.msDownTimer
	m.msDownTimer = m.downInterval()
	if m.state == StateBackup {
		m.sands = m.sands.Add(m.msDownTimer - old)
		return m.Timer(now)
	}
	return nil
}

// Fault enters FAULT (a tracked interface went down, an unweighted tracker
// failed, no source address). A master sends a priority-0 advert so that a
// backup takes over after Skew_Time, and drops the VIPs.
func (m *Machine) Fault(now time.Time) []Action {
	if m.fault {
		return nil
	}
	m.fault = true
	var acts []Action
	switch m.state {
	case StateInit:
		return nil // Start will enter FAULT
	case StateMaster:
		acts = append(acts, SendAdvert{PriorityStop}, RemoveVIPs{})
	}
	m.state = StateFault
	m.sands, m.garpAt = time.Time{}, time.Time{}
	return append(acts, Notify{StateFault, m.eff})
}

// Recover leaves FAULT: an owner becomes master (in a sync group: BACKUP
// wanting MASTER), anyone else backup with a full Master_Down_Interval.
func (m *Machine) Recover(now time.Time) []Action {
	if !m.fault {
		return nil
	}
	m.fault = false
	if m.state != StateFault {
		return nil
	}
	m.masterAdverInt = m.cfg.AdverInt
	if m.owner() {
		return m.toMaster(now)
	}
	return m.enterBackup(now)
}

// SyncMaster is the sync group going MASTER, keepalived's vrrp_sync_master
// for one member: a BACKUP becomes MASTER at once, whether or not its own
// down timer has run out, as keepalived forces every member. A member that
// has heard a better master since then yields to it again at its next
// advert. Other states are left alone.
func (m *Machine) SyncMaster(now time.Time) []Action {
	if m.state != StateBackup {
		return nil
	}
	m.wantMaster = false
	return m.becomeMaster(now)
}

// ForceBackup is another member of the sync group leaving MASTER for
// BACKUP, keepalived's vrrp_sync_backup for one member: a MASTER removes
// its VIPs and becomes BACKUP with a full down timer. keepalived sends no
// priority-0 advert here (vrrp_state_leave_master with advF false and
// wantstate BACKUP), so a peer takes over only after its own
// Master_Down_Interval. Other states are left alone.
func (m *Machine) ForceBackup(now time.Time) []Action {
	if m.state != StateMaster {
		return nil
	}
	return m.leaveMaster(now)
}

// Shutdown stops the instance: a master sends a priority-0 advert and drops
// the VIPs. The machine returns to INIT and can be started again.
func (m *Machine) Shutdown(now time.Time) []Action {
	var acts []Action
	if m.state == StateMaster {
		acts = append(acts, SendAdvert{PriorityStop}, RemoveVIPs{})
	}
	if m.state != StateInit {
		acts = append(acts, Notify{StateInit, m.eff})
	}
	m.state = StateInit
	m.sands, m.garpAt, m.preemptTime = time.Time{}, time.Time{}, time.Time{}
	return acts
}
