package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/syncd"
)

// DefaultSyncWait is how long, at most, a director that starts with
// lvs_sync_daemon holds VRRP preemption for its bulk dump (--sync-wait).
const DefaultSyncWait = 10 * time.Second

// syncState is the daemon's connection sync: the master and backup that
// global_defs lvs_sync_daemon asks for, and the gate that holds VRRP's
// preemption until the flow table is current.
//
// Both daemons run for as long as the configuration names them, on
// either role, as keepalived runs them without an instance: each director
// is master for the flows it forwards and backup for its peer's, so a
// failback keeps connections as a failover does. (keepalived with an
// instance runs the backup while BACKUP and the master while MASTER; the
// packets on the wire are the same.)
type syncState struct {
	log   *slog.Logger
	sd    dataplane.SyncDaemons // nil: the data plane has none
	stats func() syncd.Stats    // nil: the kernel's daemons (IPVS)
	wait  time.Duration         // the gate's bound
	mu    sync.Mutex
	run   *config.LVSSyncDaemon // as started (nil: none)
	since time.Time             // when the backup started
	gate  string                // what the gate last said
}

func newSyncState(log *slog.Logger, dp dataplane.Dataplane, wait time.Duration) *syncState {
	s := &syncState{log: log, wait: wait}
	s.sd, _ = dp.(dataplane.SyncDaemons)
	if st, ok := dp.(interface{ SyncStats() syncd.Stats }); ok {
		s.stats = st.SyncStats
	}
	return s
}

func daemonsOf(c *config.LVSSyncDaemon) []dataplane.SyncDaemon {
	d := dataplane.SyncDaemon{Interface: c.Interface, SyncID: c.SyncID, MaxLen: c.MaxLen, Group: c.Group, Port: c.Port, TTL: c.TTL}
	b := d
	b.Backup = true
	return []dataplane.SyncDaemon{d, b}
}

// apply starts, restarts or stops the daemons as want (cfg's
// lvs_sync_daemon, nil for none) says. On an error the daemons are as
// they were.
func (s *syncState) apply(want *config.LVSSyncDaemon) error {
	if s == nil {
		return nil // a daemon made without (tests of the owners)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if (want == nil && s.run == nil) || (want != nil && s.run != nil && sameSync(*want, *s.run)) {
		return nil
	}
	if want != nil && s.sd == nil {
		return fmt.Errorf("lvs_sync_daemon: this data plane has no connection sync daemon")
	}
	was := s.run
	s.stopLocked()
	if want == nil {
		return nil
	}
	if want.Instance != "" {
		s.log.Info("lvs_sync_daemon: master and backup run at once on either role (keepalived switches them with the instance); the instance gives the syncid",
			"instance", want.Instance, "syncid", want.SyncID)
	}
	if err := s.startLocked(want); err != nil {
		s.stopLocked()
		if was != nil {
			if err2 := s.startLocked(was); err2 != nil {
				s.log.Error("lvs_sync_daemon: restarting the previous daemons", "error", err2)
			}
		}
		return fmt.Errorf("lvs_sync_daemon %s: %w", want.Interface, err)
	}
	return nil
}

// sameSync: a and b start the same daemons.
func sameSync(a, b config.LVSSyncDaemon) bool { return slices.Equal(daemonsOf(&a), daemonsOf(&b)) }

func (s *syncState) startLocked(c *config.LVSSyncDaemon) error {
	// The kernel's daemons outlive an xlb killed on the IPVS data plane:
	// one running as wanted is kept, another stopped first.
	running, err := s.sd.Daemons()
	if err != nil {
		return err
	}
	// Set first: if the backup cannot start, stopLocked stops the master
	// started before it.
	s.run, s.gate = c, ""
	for _, d := range daemonsOf(c) {
		i := slices.IndexFunc(running, func(r dataplane.SyncDaemon) bool { return r.Backup == d.Backup })
		if i >= 0 {
			if sameDaemon(running[i], d) {
				s.log.Info("lvs_sync_daemon: the daemon already running is the one wanted: kept", "backup", d.Backup, "interface", d.Interface)
				if d.Backup {
					s.since = time.Now()
				}
				continue
			}
			if err := s.sd.StopDaemon(d.Backup); err != nil {
				return err
			}
		}
		if err := s.sd.StartDaemon(d); err != nil {
			return err
		}
		if d.Backup {
			s.since = time.Now()
		}
	}
	return nil
}

// sameDaemon: r, as the data plane lists it (defaults filled in), is
// what w asks for (zero: the default).
func sameDaemon(r, w dataplane.SyncDaemon) bool {
	return r.Interface == w.Interface && r.SyncID == w.SyncID && (w.MaxLen == 0 || r.MaxLen == w.MaxLen) &&
		(!w.Group.IsValid() || r.Group == w.Group) && (w.Port == 0 || r.Port == w.Port) && (w.TTL == 0 || r.TTL == w.TTL)
}

func (s *syncState) stopLocked() {
	if s.run == nil {
		return
	}
	for _, backup := range []bool{false, true} {
		if err := s.sd.StopDaemon(backup); err != nil && !errors.Is(err, syscall.ESRCH) {
			s.log.Warn("lvs_sync_daemon: stop", "backup", backup, "error", err)
		}
	}
	s.run = nil
}

func (s *syncState) stop() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// hold is VRRP's PreemptHold: while xlb's backup runs, has had no bulk
// dump, and the bound has not passed since it started, a director does
// not preempt its peer. Each change of verdict is logged once.
func (s *syncState) hold(now time.Time) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == nil || s.stats == nil {
		return false
	}
	st := s.stats()
	var say string
	held := false
	switch {
	case !st.DumpReceived.IsZero():
		say = "preemption allowed: the flow table is current (bulk dump received)"
	case now.Sub(s.since) >= s.wait:
		say = "preemption allowed without a bulk dump: --sync-wait passed (a kernel IPVS master sends none)"
	default:
		say, held = "preemption held until the flow table is current (bulk dump requested)", true
	}
	if say != s.gate {
		s.gate = say
		s.log.Info("sync gate: "+say, "waited", now.Sub(s.since).Round(time.Millisecond).String(), "bound", s.wait.String(),
			"records_received", st.ReceivedRecords)
	}
	return held
}

// status adds the sync daemons and their counts to st.
func (s *syncState) status(st *control.Status) {
	if s == nil {
		return
	}
	s.mu.Lock()
	run, gate := s.run, s.gate
	s.mu.Unlock()
	if s.sd == nil {
		return
	}
	ds, err := s.sd.Daemons()
	if err != nil || len(ds) == 0 {
		return
	}
	out := &control.Sync{Gate: gate, Configured: run != nil}
	for _, d := range ds {
		role := "master"
		if d.Backup {
			role = "backup"
		}
		out.Daemons = append(out.Daemons, control.SyncDaemon{Role: role, Interface: d.Interface, SyncID: d.SyncID,
			MaxLen: d.MaxLen, Group: d.Group.String(), Port: d.Port, TTL: d.TTL})
	}
	if s.stats != nil {
		x := s.stats()
		out.Stats = &control.SyncStats{
			SentMessages: x.SentMessages, SentRecords: x.SentRecords, SendErrors: x.SendErrors, Unsendable: x.Unsendable, Dumps: x.Dumps,
			ReceivedMessages: x.ReceivedMessages, ReceivedRecords: x.ReceivedRecords, Installed: x.Installed,
			Stale: x.Stale, Skipped: x.Skipped, Dropped: x.Dropped, OtherSyncID: x.OtherSyncID, Malformed: x.Malformed,
			InstallErrors: x.InstallErrors, LastReceived: x.LastReceived, DumpRequested: x.DumpRequested,
			DumpReceived: x.DumpReceived, LastPass: x.LastPass,
		}
	}
	st.Sync = out
}
