package director

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/vrrp"
)

// VRRP runs the configuration's vrrp_instance blocks with pkg/vrrp: adverts
// on the instance's interface, the VIPs added while MASTER (with gratuitous
// ARPs) and removed otherwise, notify scripts on transitions.
type VRRP struct {
	log        *slog.Logger
	scripts    ScriptRunner
	handle     *netlink.Handle
	scriptUser string

	mu        sync.Mutex
	instances []config.VRRPInstance
	runners   []*vrrpRunner
	// vrrp_script results by name, and the loop running them.
	tracks     map[string]*trackState
	stopTracks context.CancelFunc
}

// trackState is one vrrp_script's status with keepalived's rise/fall.
type trackState struct {
	status    vrrp.TrackStatus
	ok, fails int
}

type vrrpRunner struct {
	cfg     config.VRRPInstance
	runner  *vrrp.Runner
	garp    *vrrp.GARP
	err     error
	faulted bool
}

// NewVRRP prepares to run instances; handle is the netlink socket for the
// VIPs (nil: the calling namespace's).
func NewVRRP(log *slog.Logger, scripts ScriptRunner, handle *netlink.Handle, scriptUser string) *VRRP {
	if scripts == nil {
		scripts = func(*config.Script, string) {}
	}
	return &VRRP{log: log, scripts: scripts, handle: handle, scriptUser: scriptUser}
}

// Load runs cfg's instances. Instances are restarted only when their
// configuration changed (a restart goes through BACKUP).
func (v *VRRP) Load(cfg *config.Config) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if reflect.DeepEqual(withoutInstancePos(v.instances), withoutInstancePos(cfg.Instances)) && v.runners != nil {
		return
	}
	v.stopLocked()
	v.instances = cfg.Instances
	for _, in := range cfg.Instances {
		v.runners = append(v.runners, v.start(in))
	}
	v.startTracks(cfg)
}

// startTracks runs every vrrp_script an instance tracks, every interval,
// and applies the effective priority (or FAULT) its results imply.
func (v *VRRP) startTracks(cfg *config.Config) {
	ctx, cancel := context.WithCancel(context.Background())
	v.stopTracks = cancel
	v.tracks = map[string]*trackState{}
	for _, in := range cfg.Instances {
		for _, ts := range in.TrackScripts {
			if _, ok := v.tracks[ts.Name]; ok {
				continue
			}
			sc := cfg.Script(ts.Name)
			if sc == nil {
				continue
			}
			st := &trackState{status: vrrp.TrackInit}
			if sc.InitFail {
				st.status = vrrp.TrackFailed
			}
			v.tracks[ts.Name] = st
			go v.runTrack(ctx, *sc, st)
		}
	}
	v.applyTracksLocked()
}

func (v *VRRP) runTrack(ctx context.Context, sc config.VRRPScript, st *trackState) {
	for {
		err := runScriptTimeout(ctx, &sc.Script, v.scriptUser, sc.Timeout)
		if ctx.Err() != nil {
			return
		}
		v.mu.Lock()
		was := st.status
		if err == nil {
			st.ok, st.fails = st.ok+1, 0
			if st.ok >= sc.Rise {
				st.status = vrrp.TrackOK
			}
		} else {
			st.ok, st.fails = 0, st.fails+1
			if st.fails >= sc.Fall {
				st.status = vrrp.TrackFailed
			}
		}
		if st.status != was {
			v.log.Info("vrrp_script changed", "script", sc.Name, "ok", st.status == vrrp.TrackOK, "error", err)
			v.applyTracksLocked()
		}
		v.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(sc.Interval):
		}
	}
}

// applyTracksLocked sets each instance's effective priority from its
// trackers, or puts it in FAULT (keepalived's rules: vrrp.EffectivePriority).
func (v *VRRP) applyTracksLocked() {
	for _, r := range v.runners {
		if r.runner == nil || len(r.cfg.TrackScripts) == 0 {
			continue
		}
		var ts []vrrp.Tracker
		for _, t := range r.cfg.TrackScripts {
			st := v.tracks[t.Name]
			if st == nil {
				continue
			}
			ts = append(ts, vrrp.Tracker{Weight: t.Weight, Reverse: t.Reverse, Status: st.status})
		}
		prio, fault := vrrp.EffectivePriority(r.cfg.Priority, ts)
		switch {
		case fault && !r.faulted:
			r.faulted = true
			r.runner.Fault()
		case !fault && r.faulted:
			r.faulted = false
			r.runner.Recover()
		}
		if !fault {
			r.runner.SetEffectivePriority(prio)
		}
	}
}

func withoutInstancePos(ins []config.VRRPInstance) []config.VRRPInstance {
	out := make([]config.VRRPInstance, len(ins))
	for i, in := range ins {
		in.Pos = config.Pos{}
		out[i] = in
	}
	return out
}

func (v *VRRP) start(in config.VRRPInstance) *vrrpRunner {
	vr := &vrrpRunner{cfg: in}
	fail := func(err error) *vrrpRunner {
		vr.err = err
		v.log.Error("vrrp_instance not started", "instance", in.Name, "error", err)
		return vr
	}
	if in.IsIPv6() {
		return fail(fmt.Errorf("IPv6 instances are not supported yet"))
	}
	if in.UseVMAC {
		return fail(fmt.Errorf("use_vmac is not supported yet"))
	}
	if len(in.TrackInterfaces) > 0 {
		v.log.Warn("track_interface is not applied yet", "instance", in.Name)
	}
	var peers []netip.Addr
	var upeers []vrrp.UnicastPeer
	for _, p := range in.UnicastPeers {
		peers = append(peers, p.Addr)
		upeers = append(upeers, vrrp.UnicastPeer{Addr: p.Addr, MinTTL: uint8(p.MinTTL), MaxTTL: uint8(p.MaxTTL)})
	}
	conn, err := vrrp.New(in.Interface, vrrp.ConnConfig{SourceIP: in.UnicastSrcIP, Peers: peers})
	if err != nil {
		return fail(err)
	}
	garp, err := vrrp.NewGARP(in.Interface)
	if err != nil {
		conn.Close()
		return fail(err)
	}
	vr.garp = garp
	var vips []netip.Prefix
	for _, ip := range in.VirtualIPs {
		vips = append(vips, ip.Prefix)
	}
	auth := vrrp.AuthNone
	if in.AuthType == config.AuthPass {
		auth = vrrp.AuthPass
	}
	name := in.Name
	r, err := vrrp.NewRunner(vrrp.RunnerConfig{
		Instance: vrrp.Config{
			VRID: in.VirtualRouterID, Version: uint8(in.Version), Priority: in.Priority,
			AdverInt: in.AdvertInterval, NoPreempt: in.Nopreempt, PreemptDelay: in.PreemptDelay,
			GARPMasterDelay: in.GarpMasterDelay, GARPMasterRepeat: in.GarpMasterRepeat,
		},
		VIPs:     vips,
		AuthType: auth, AuthPass: in.AuthPass,
		Peers: upeers,
		Conn:  conn,
		ARP:   garp,
		Addrs: vrrp.NetlinkVIPs{Handle: v.handle, Link: in.Interface},
		OnNotify: func(n vrrp.Notify) {
			v.log.Info("vrrp transition", "instance", name, "state", n.State.String(), "priority", n.Priority)
			go v.notify(in, n)
		},
		Logf: func(format string, args ...any) { v.log.Debug(fmt.Sprintf(format, args...), "instance", name) },
	})
	if err != nil {
		conn.Close()
		garp.Close()
		return fail(err)
	}
	vr.runner = r
	r.Start()
	v.log.Info("vrrp_instance started", "instance", name, "interface", in.Interface, "vrid", in.VirtualRouterID, "priority", in.Priority)
	return vr
}

// notify runs keepalived's notify scripts for a transition.
func (v *VRRP) notify(in config.VRRPInstance, n vrrp.Notify) {
	state := n.State.String()
	var s *config.Script
	switch n.State {
	case vrrp.StateMaster:
		s = in.NotifyMaster
	case vrrp.StateBackup:
		s = in.NotifyBackup
	case vrrp.StateFault:
		s = in.NotifyFault
	case vrrp.StateInit:
		s, state = in.NotifyStop, "STOP"
	}
	if s != nil {
		v.scripts(s, "notify "+in.Name+" "+state)
	}
	if in.Notify != nil {
		g := *in.Notify
		g.Args = append(append([]string{}, g.Args...), "INSTANCE", in.Name, state, strconv.Itoa(int(n.Priority)))
		v.scripts(&g, "notify "+in.Name+" "+state)
	}
}

// Stop sends priority 0 from masters and removes their VIPs.
func (v *VRRP) Stop() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stopLocked()
}

func (v *VRRP) stopLocked() {
	if v.stopTracks != nil {
		v.stopTracks()
	}
	for _, r := range v.runners {
		if r.runner != nil {
			r.runner.Stop()
		}
		if r.garp != nil {
			r.garp.Close()
		}
	}
	v.runners = nil
}

// Status is each instance's state and effective priority.
func (v *VRRP) Status() []control.VRRPInstance {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []control.VRRPInstance
	for _, r := range v.runners {
		s := control.VRRPInstance{Name: r.cfg.Name, Interface: r.cfg.Interface, VRID: r.cfg.VirtualRouterID, Priority: r.cfg.Priority}
		if r.runner != nil {
			s.State, s.Priority = r.runner.State().String(), r.runner.Priority()
		} else {
			s.State, s.Note = "FAULT", r.err.Error()
		}
		out = append(out, s)
	}
	return out
}
