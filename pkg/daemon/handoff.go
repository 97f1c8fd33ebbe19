package daemon

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/xlbproject/xlb/pkg/config"
)

// A hitless restart: the stopping daemon leaves the data plane forwarding
// (pinned), its VIPs on the interfaces and its VRRP instances without a
// goodbye, and writes which instances were MASTER; the next daemon takes
// the data plane over and resumes those instances as MASTER at once, so
// its peers never see a master-down interval pass. SIGUSR2 (or SIGTERM
// with --keep-dataplane) stops that way.

// handoff is the file the stopping daemon leaves for the next one, beside
// the control socket (a bpffs pin directory takes no files).
type handoff struct {
	Written time.Time `json:"written"`
	PID     int       `json:"pid"`
	// Masters are the vrrp_instances that were MASTER.
	Masters []string `json:"masters"`
}

func (o Options) handoffFile() string { return o.Socket + ".handoff" }

// Handoffer is a VIP owner that can stop for the next process to resume
// (vrrpd.Supervisor): it returns what was MASTER.
type Handoffer interface {
	Handoff() []string
}

func writeHandoff(o Options, masters []string, log *slog.Logger) {
	b, err := json.Marshal(handoff{Written: time.Now(), PID: os.Getpid(), Masters: masters})
	if err == nil {
		err = os.WriteFile(o.handoffFile(), b, 0o600)
	}
	if err != nil {
		log.Error("handoff: the next xlb will start its instances as BACKUP", "error", err)
		return
	}
	log.Info("handed off: data plane, VIPs and VRRP state left for the next xlb", "masters", masters, "file", o.handoffFile())
}

// readHandoff takes the handoff file (removing it) and returns the
// instances to resume as MASTER: those that were, if the file is younger
// than the shortest master-down interval a backup of theirs can have
// (past it a peer may have taken over). It is read as the configuration
// is, before the data plane loads: a vrrpd.Bridge advertises for them
// from then on.
func readHandoff(o Options, cfg *config.Config, log *slog.Logger) map[string]bool {
	b, err := os.ReadFile(o.handoffFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	_ = os.Remove(o.handoffFile())
	var h handoff
	if err == nil {
		err = json.Unmarshal(b, &h)
	}
	if err != nil {
		log.Warn("handoff file unreadable: instances start as BACKUP", "file", o.handoffFile(), "error", err)
		return nil
	}
	age := time.Since(h.Written)
	// The earliest a backup may take over: its master-down timer, 3
	// intervals and its skew (RFC 5798 6.1; keepalived's
	// VRRP_TIMER_SKEW), run from the old MASTER's last advert as it
	// handed off (vrrp's Machine.Handoff). A backup's priority is at most
	// ours, so its skew at least (256 - ours)/256 of an interval (of a
	// second for VRRPv2: the smaller of the two).
	down := map[string]time.Duration{}
	for _, in := range cfg.Instances {
		a := max(in.AdvertInterval, 10*time.Millisecond)
		down[in.Name] = 3*a + time.Duration(256-int(in.Priority))*min(a, time.Second)/256
	}
	out := map[string]bool{}
	for _, name := range h.Masters {
		d, ok := down[name]
		switch {
		case !ok:
			log.Info("handoff: the instance is no longer configured", "instance", name)
		case age >= d:
			// Past it a backup may have taken over.
			log.Warn("handoff too old: the instance starts as BACKUP (its peers may have taken over)", "instance", name,
				"age", age.Round(time.Millisecond).String(), "master_down", d.Round(time.Millisecond).String())
		default:
			out[name] = true
		}
	}
	if len(out) > 0 {
		log.Info("handoff taken: these instances resume as MASTER", "instances", len(out), "age", age.Round(time.Millisecond).String())
	}
	return out
}
