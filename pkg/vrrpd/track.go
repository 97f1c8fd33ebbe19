package vrrpd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/scripts"
	"github.com/xlbproject/xlb/pkg/vrrp"
)

// Trackers move an instance's effective priority or put it in FAULT
// (keepalived's rules, reference B.4): track_script (vrrp_script run every
// interval with rise/fall), track_interface (link up and running), and
// track_file (a number in a file). A vrrp_sync_group's trackers count for
// every member, and a member in FAULT takes the whole group to FAULT (the
// MASTER/BACKUP coupling of a group is syncGroup, in vrrp.go).

// trackState is one tracked object's state.
type trackState struct {
	status    vrrp.TrackStatus
	ok, fails int   // vrrp_script rise/fall counts
	value     int64 // track_file: the number read
}

func scriptKey(name string) string { return "script:" + name }
func ifaceKey(name string) string  { return "iface:" + name }
func fileKey(name string) string   { return "file:" + name }

// trackFilePoll is how often a track_file is read. keepalived uses inotify;
// a read of a small file every 100 ms costs nothing and cannot miss a
// rename.
const trackFilePoll = 100 * time.Millisecond

// startTracks starts what the instances and sync groups track and applies
// the effective priorities (or FAULT) their states imply. On a reload a
// track_file's init_file creates a missing file but overwrites none, as
// keepalived's, and a vrrp_script in carried (unchanged by the reload)
// starts from the result it had, not from "not run yet".
func (v *Supervisor) startTracks(cfg *config.Config, reload bool, carried map[string]trackState) {
	ctx, cancel := context.WithCancel(context.Background())
	v.stopTracks = cancel
	v.tracks = map[string]*trackState{}
	var scripts []config.TrackScript
	var ifaces []string
	var files []config.TrackFileRef
	for _, in := range cfg.Instances {
		scripts = append(scripts, in.TrackScripts...)
		files = append(files, in.TrackFiles...)
		ifaces = append(ifaces, in.Interface)
		for _, ti := range in.TrackInterfaces {
			ifaces = append(ifaces, ti.Name)
		}
	}
	for _, g := range cfg.SyncGroups {
		scripts = append(scripts, g.TrackScripts...)
		files = append(files, g.TrackFiles...)
		for _, ti := range g.TrackInterfaces {
			ifaces = append(ifaces, ti.Name)
		}
	}
	for _, ts := range scripts {
		if _, ok := v.tracks[scriptKey(ts.Name)]; ok {
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
		if c, ok := carried[ts.Name]; ok {
			*st = c
		}
		v.tracks[scriptKey(ts.Name)] = st
		go v.runTrack(ctx, *sc, st)
	}
	var watch []string
	for _, name := range ifaces {
		if name == "" || v.tracks[ifaceKey(name)] != nil {
			continue
		}
		st, err := linkStatus(name)
		if err != nil {
			v.log.Warn("tracked interface unknown until the next check", "interface", name, "error", err)
		}
		v.tracks[ifaceKey(name)] = &trackState{status: st}
		watch = append(watch, name)
	}
	if len(watch) > 0 {
		go v.watchLinks(ctx, watch)
	}
	for _, ref := range files {
		tf := cfg.TrackFile(ref.Name)
		if tf == nil || v.tracks[fileKey(ref.Name)] != nil {
			continue
		}
		initTrackFile(tf, reload, v.log.Error)
		st := &trackState{status: vrrp.TrackOK}
		st.value, _ = readTrackFile(tf.Path)
		v.tracks[fileKey(ref.Name)] = st
		go v.watchFile(ctx, *tf, st)
	}
	v.applyTracksLocked()
}

// unchangedScripts are the states of the vrrp_scripts that old and now
// define alike, by name, for startTracks to carry over a reload.
func (v *Supervisor) unchangedScripts(old, now []config.VRRPScript) map[string]trackState {
	out := map[string]trackState{}
	for _, n := range now {
		i := slices.IndexFunc(old, func(o config.VRRPScript) bool { return o.Name == n.Name })
		if i < 0 || !reflect.DeepEqual(old[i], n) {
			continue
		}
		if st := v.tracks[scriptKey(n.Name)]; st != nil {
			out[n.Name] = *st
		}
	}
	return out
}

func (v *Supervisor) runTrack(ctx context.Context, sc config.VRRPScript, st *trackState) {
	for {
		err := scripts.Run(ctx, &sc.Script, sc.Timeout)
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

// linkStatus is OK when the interface is up and has carrier (keepalived:
// IFF_UP and IFF_RUNNING); a missing interface has failed. An error that
// says nothing of the interface (the process out of descriptors, netlink
// busy) is returned instead: the caller keeps what it knew.
func linkStatus(name string) (vrrp.TrackStatus, error) {
	l, err := netlink.LinkByName(name)
	var missing netlink.LinkNotFoundError
	switch {
	case errors.As(err, &missing):
		return vrrp.TrackFailed, nil
	case err != nil:
		return vrrp.TrackInit, fmt.Errorf("read interface %s: %w", name, err)
	}
	if f := l.Attrs().RawFlags; f&unix.IFF_UP == 0 || f&unix.IFF_RUNNING == 0 {
		return vrrp.TrackFailed, nil
	}
	return vrrp.TrackOK, nil
}

// watchLinks follows the tracked interfaces through netlink link events,
// and reads them again every few seconds in case an event was lost.
func (v *Supervisor) watchLinks(ctx context.Context, names []string) {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			if ctx.Err() == nil {
				v.log.Warn("link events", "error", err)
			}
		},
	}); err != nil {
		v.log.Error("cannot follow link events; reading tracked interfaces every second", "error", err)
		updates = nil
	}
	resync := time.NewTicker(5 * time.Second)
	if updates == nil {
		resync.Reset(time.Second)
	}
	defer resync.Stop()
	check := func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		changed := false
		for _, name := range names {
			st := v.tracks[ifaceKey(name)]
			if st == nil {
				continue
			}
			now, err := linkStatus(name)
			if err != nil {
				v.log.Warn("tracked interface: cannot read it; keeping its last state", "interface", name, "error", err)
				continue
			}
			if now != st.status {
				st.status = now
				changed = true
				v.log.Info("tracked interface changed", "interface", name, "up", now == vrrp.TrackOK)
			}
		}
		if changed {
			v.applyTracksLocked()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-updates:
			if !ok {
				updates = nil
				resync.Reset(time.Second)
				continue
			}
			check()
		case <-resync.C:
			check()
		}
	}
}

// initTrackFile writes init_file's value when the file is missing, or
// always with overwrite.
func initTrackFile(tf *config.TrackFile, reload bool, logError func(string, ...any)) {
	if !tf.InitFile {
		return
	}
	if _, err := os.Stat(tf.Path); err == nil && (!tf.Overwrite || reload) {
		return
	}
	if err := os.WriteFile(tf.Path, []byte(strconv.FormatInt(tf.InitValue, 10)+"\n"), 0o644); err != nil {
		logError("track_file init_file", "track_file", tf.Name, "error", err)
	}
}

// readTrackFile reads the number a track_file holds. keepalived reads a
// missing or unreadable file, or one without a number, as 0.
func readTrackFile(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("empty")
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (v *Supervisor) watchFile(ctx context.Context, tf config.TrackFile, st *trackState) {
	t := time.NewTicker(trackFilePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, _ := readTrackFile(tf.Path)
		v.mu.Lock()
		if ctx.Err() == nil && n != st.value {
			v.log.Info("track_file changed", "track_file", tf.Name, "file", tf.Path, "value", n)
			st.value = n
			v.applyTracksLocked()
		}
		v.mu.Unlock()
	}
}

// trackersOf is what one instance (or group) tracks, as vrrp.Trackers.
func (v *Supervisor) trackersOf(scripts []config.TrackScript, ifaces []config.TrackInterface, files []config.TrackFileRef) []vrrp.Tracker {
	var out []vrrp.Tracker
	for _, t := range scripts {
		if st := v.tracks[scriptKey(t.Name)]; st != nil {
			out = append(out, vrrp.Tracker{Weight: t.Weight, Reverse: t.Reverse, Status: st.status})
		}
	}
	for _, t := range ifaces {
		if st := v.tracks[ifaceKey(t.Name)]; st != nil {
			out = append(out, vrrp.Tracker{Weight: t.Weight, Reverse: t.Reverse, Status: st.status})
		}
	}
	for _, t := range files {
		if st := v.tracks[fileKey(t.Name)]; st != nil {
			if tr, ok := vrrp.FileTracker(st.value, t.Weight, t.Reverse); ok {
				out = append(out, tr)
			}
		}
	}
	return out
}

// applyTracksLocked sets each instance's effective priority from its
// trackers and its sync group's, or puts it in FAULT: its own interface
// down (keepalived tracks it unless dont_track_primary), an unweighted
// tracker failed, or another member of its sync group is in FAULT.
func (v *Supervisor) applyTracksLocked() {
	groupOf := func(name string) *config.SyncGroup {
		if sg := v.sync[name]; sg != nil {
			return &sg.cfg
		}
		return nil
	}
	prios := make([]uint8, len(v.runners))
	faults := make([]bool, len(v.runners))
	groupFault := map[string]bool{}
	for i, r := range v.runners {
		ts := v.trackersOf(r.cfg.TrackScripts, r.cfg.TrackInterfaces, r.cfg.TrackFiles)
		if st := v.tracks[ifaceKey(r.cfg.Interface)]; st != nil {
			ts = append(ts, vrrp.Tracker{Status: st.status})
		}
		if g := groupOf(r.cfg.Name); g != nil {
			ts = append(ts, v.trackersOf(g.TrackScripts, g.TrackInterfaces, g.TrackFiles)...)
		}
		prios[i], faults[i] = vrrp.EffectivePriority(r.cfg.Priority, ts)
		if g := groupOf(r.cfg.Name); g != nil && (faults[i] || r.runner == nil) {
			groupFault[g.Name] = true
		}
	}
	for i, r := range v.runners {
		if r.runner == nil {
			continue
		}
		fault := faults[i]
		if g := groupOf(r.cfg.Name); g != nil && groupFault[g.Name] {
			fault = true
		}
		switch {
		case fault && !r.faulted:
			r.faulted = true
			r.runner.Fault()
		case !fault && r.faulted:
			r.faulted = false
			r.runner.Recover()
		}
		if !fault {
			r.runner.SetEffectivePriority(prios[i])
		}
	}
}
