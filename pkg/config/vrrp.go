package config

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// blockName reads the one name of "vrrp_instance NAME {" and the like.
func (ps *parser) blockName(n *node) (string, bool) {
	if !ps.needBlock(n) {
		return "", false
	}
	if len(n.args) == 0 {
		ps.p.errorf(n.pos, n.kw, "missing name after")
		return "", false
	}
	if len(n.args) > 1 {
		ps.p.warnf(n.pos, n.args[1], "extra words after %s name ignored, from", n.kw)
	}
	return n.args[0], true
}

func (ps *parser) vrrpScript(b *node) {
	name, ok := ps.blockName(b)
	if !ok {
		return
	}
	s := VRRPScript{Name: name, Interval: time.Second, Rise: 1, Fall: 1, Pos: b.pos}
	var haveScript, haveTimeout bool
	for _, n := range b.children {
		switch n.kw {
		case "script":
			if sc := ps.scriptArg(n, false); sc != nil {
				s.Script.Args = sc.Args
				haveScript = true
			}
		case "interval":
			if d, ok := ps.secondsArg(n, 1, 4294); ok {
				s.Interval = d
			}
		case "timeout":
			if v, ok := ps.one(n, 0, 4294); ok {
				s.Timeout = time.Duration(ps.atLeastOne(n, int(v))) * time.Second
				haveTimeout = true
			}
		case "weight":
			if ps.args(n, 1, 2) {
				if w, ok := ps.intArg(n, 0, -253, 253); ok {
					s.Weight = int(w)
				}
				if len(n.args) == 2 {
					s.Reverse, _ = ps.reverseArg(n, n.args[1])
				}
			}
		case "rise":
			if v, ok := ps.one(n, 1, 1<<31-1); ok {
				s.Rise = int(v)
			}
		case "fall":
			if v, ok := ps.one(n, 1, 1<<31-1); ok {
				s.Fall = int(v)
			}
		case "user":
			if ps.args(n, 1, 2) {
				s.Script.User = n.args[0]
				if len(n.args) == 2 {
					s.Script.Group = n.args[1]
				}
			}
		case "init_fail":
			s.InitFail = ps.flag(n)
		default:
			ps.unknown(n, ctxScript)
		}
	}
	if !haveTimeout {
		s.Timeout = s.Interval
	}
	if ps.cfg.Script(name) != nil {
		ps.p.errorf(b.pos, name, "vrrp_script defined twice:")
		return
	}
	if !haveScript {
		ps.p.warnf(b.pos, name, "no script set, removing vrrp_script")
		return
	}
	ps.cfg.Scripts = append(ps.cfg.Scripts, s)
}

// reverseArg reads the reverse|noreverse|no_reverse after a weight.
func (ps *parser) reverseArg(n *node, s string) (rev, ok bool) {
	switch s {
	case "reverse":
		return true, true
	case "noreverse", "no_reverse":
		return false, true
	}
	ps.p.errorf(n.pos, s, "expected reverse or noreverse after the weight, got")
	return false, false
}

// trackDraft is a track_script, track_interface or track_file entry as
// written.
type trackDraft struct {
	pos        Pos
	name       string
	weight     int
	weightSet  bool
	reverse    bool
	reverseSet bool
	// before is, for a track_script or track_file entry, how many
	// vrrp_script or track_file blocks precede it: keepalived looks the
	// name up as it reads the entry.
	before int
}

// trackScriptEntries reads the track_script block of a vrrp_instance or
// vrrp_sync_group.
func (ps *parser) trackScriptEntries(b *node) []trackDraft {
	ts := ps.trackBlock(b, 253)
	for i := range ts {
		ts[i].before = len(ps.cfg.Scripts)
	}
	return ts
}

// trackBlock reads the lines of track_script, track_interface or
// track_file: "NAME [weight N [reverse|noreverse]]", with weights up to
// ±maxWeight (see trackWeight).
func (ps *parser) trackBlock(b *node, maxWeight int) []trackDraft {
	if !ps.needBlock(b) {
		return nil
	}
	var out []trackDraft
	for _, n := range b.children {
		if !ps.valueLine(n) {
			continue
		}
		t := trackDraft{pos: n.pos, name: n.kw}
		a := n.args
		if len(a) > 0 {
			if a[0] != "weight" || len(a) < 2 {
				ps.p.errorf(n.pos, a[0], "%s entry: expected \"weight N\" after the name, got", b.kw)
				continue
			}
			w, ok := ps.trackWeight(n, a[1], maxWeight)
			if !ok {
				continue
			}
			t.weight, t.weightSet = w, true
			if len(a) > 2 {
				if t.reverse, ok = ps.reverseArg(n, a[2]); !ok {
					continue
				}
				t.reverseSet = true
			}
			if len(a) > 3 {
				ps.p.warnf(n.pos, a[3], "extra words in %s entry ignored, from", b.kw)
			}
		}
		out = append(out, t)
	}
	return out
}

// trackWeight reads a tracking weight. keepalived reads every one as
// -254..254 and clamps it to ±max: 253 for scripts and interfaces, 254 for
// files (whose value can be negative).
func (ps *parser) trackWeight(n *node, s string, max int) (int, bool) {
	w, ok := parseInt(s)
	if !ok || w < -254 || w > 254 {
		ps.p.errorf(n.pos, s, "tracking weight must be an integer in [-%d, %d], got", max, max)
		return 0, false
	}
	if w > max || w < -max {
		ps.p.warnf(n.pos, s, "tracking weight cannot be ±%d, using ±%d instead of", max+1, max)
		if w > 0 {
			w = max
		} else {
			w = -max
		}
	}
	return w, true
}

func parseInt(s string) (int, bool) {
	neg := strings.HasPrefix(s, "-")
	d := strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	if !isDigits(d) || len(d) > 9 {
		return 0, false
	}
	v := 0
	for i := 0; i < len(d); i++ {
		v = v*10 + int(d[i]-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// instanceDraft is a vrrp_instance being read: the settings whose defaults
// depend on others are kept apart until the end.
type instanceDraft struct {
	v         VRRPInstance
	priority  int // 0: not set
	state     State
	version   int
	advert    time.Duration
	strictSet bool
	// check_unicast_src and skip_check_adv_addr when set in the instance.
	checkSrc, skipAdv *bool
	ttlBound          bool // a unicast_peer has min_ttl or max_ttl
	garpDelay         *time.Duration
	garpRepeat        int
	// garp_master_refresh and _repeat, when set in the instance.
	garpRefresh       *time.Duration
	garpRefreshRepeat int
	smtpAlert         opt[bool]
	scripts           []trackDraft
	interfaces        []trackDraft
	files             []trackDraft
	// syncdIfs are its lvs_sync_daemon_interface lines.
	syncdIfs []trackDraft
}

func (ps *parser) vrrpInstance(b *node) {
	name, ok := ps.blockName(b)
	if !ok {
		return
	}
	d := &instanceDraft{v: VRRPInstance{Name: name, Pos: b.pos}}
	v := &d.v
	for _, n := range b.children {
		switch n.kw {
		case "state":
			if s, ok := ps.stringArg(n); ok {
				switch s {
				case "MASTER":
					d.state = StateMaster
				case "BACKUP":
					if d.state == StateMaster {
						ps.p.warnf(n.pos, s, "state previously set as MASTER; ignoring")
					} else {
						d.state = StateBackup
					}
				default:
					ps.p.warn(Warning{File: n.pos.File, Line: n.pos.Line, Word: s, Msg: "state must be MASTER or BACKUP, got", Then: "read as BACKUP, as keepalived reads it"})
					d.state = StateBackup
				}
			}
		case "interface":
			if s, ok := ps.stringArg(n); ok {
				v.Interface = s
			}
		case "virtual_router_id":
			if x, ok := ps.one(n, 1, 255); ok {
				v.VirtualRouterID = uint8(x)
			}
		case "priority":
			if !ps.args(n, 1, 1) {
				continue
			}
			if x, err := strconv.ParseUint(n.args[0], 10, 8); err == nil && isDigits(n.args[0]) && x >= 1 {
				d.priority = int(x)
			} else {
				// keepalived sets its default, 100, even with state MASTER.
				ps.p.warn(Warning{File: n.pos.File, Line: n.pos.Line, Word: n.args[0], Msg: "priority must be an integer in [1, 255], got",
					Then: "read as 100, as keepalived reads it"})
				d.priority = 100
			}
		case "advert_int":
			if t, ok := ps.timerArg(n, 10*time.Millisecond, 255*time.Second); ok {
				d.advert = t
			}
		case "version":
			if x, ok := ps.one(n, 2, 3); ok {
				d.version = int(x)
			}
		case "strict_mode":
			v.Strict = ps.flag(n)
			d.strictSet = true
		case "authentication":
			ps.authentication(n, d)
		case "virtual_ipaddress":
			v.VirtualIPs = ps.vipBlock(n, v.VirtualIPs)
		case "virtual_ipaddress_excluded":
			v.ExcludedVirtualIPs = ps.vipBlock(n, v.ExcludedVirtualIPs)
		case "track_script":
			d.scripts = append(d.scripts, ps.trackScriptEntries(n)...)
		case "track_interface":
			d.interfaces = append(d.interfaces, ps.trackBlock(n, 253)...)
		case "track_file":
			d.files = append(d.files, ps.trackFileEntries(n)...)
		case "nopreempt":
			v.Nopreempt = ps.flag(n)
		case "preempt":
			if ps.args(n, 0, 0) {
				v.Nopreempt = false
			}
		case "preempt_delay":
			if t, ok := ps.timerArg(n, 0, 1000*time.Second); ok {
				v.PreemptDelay = t
			}
		case "unicast_src_ip", "mcast_src_ip":
			if ps.args(n, 1, 1) {
				if a, ok := ps.addrArg(n, 0); ok {
					v.UnicastSrcIP = a
				}
			}
		case "unicast_peer":
			ps.unicastPeers(n, d)
		case "check_unicast_src":
			b := ps.flag(n)
			d.checkSrc = &b
		case "skip_check_adv_addr":
			b := ps.flag(n)
			d.skipAdv = &b
		case "notify_master":
			v.NotifyMaster = ps.scriptArg(n, true)
		case "notify_backup":
			v.NotifyBackup = ps.scriptArg(n, true)
		case "notify_fault":
			v.NotifyFault = ps.scriptArg(n, true)
		case "notify_stop":
			v.NotifyStop = ps.scriptArg(n, true)
		case "notify":
			v.Notify = ps.scriptArg(n, true)
		case "smtp_alert":
			if b, ok := ps.optFlag(n); ok {
				d.smtpAlert.put(b)
			}
		case "garp_master_delay":
			if t, ok := ps.secondsArg(n, 0, 1<<31-1); ok {
				d.garpDelay = &t
			}
		case "garp_master_repeat":
			if x, ok := ps.one(n, 0, 1<<31-1); ok {
				d.garpRepeat = ps.atLeastOne(n, int(x))
			}
		case "garp_master_refresh":
			if t, ok := ps.secondsArg(n, 0, 1<<31-1); ok {
				d.garpRefresh = &t
			}
		case "garp_master_refresh_repeat":
			if x, ok := ps.one(n, 0, 1<<31-1); ok {
				d.garpRefreshRepeat = ps.atLeastOne(n, int(x))
			}
		case "lvs_sync_daemon_interface":
			// keepalived 2.2.7's vrrp_lvs_syncd_handler: deprecated, and
			// "lvs_sync_daemon IF" with this instance once the whole file
			// is read (finishLVSSyncDaemon). keepalived ends at a missing
			// interface.
			ps.p.warnf(n.pos, n.kw, "(%s) deprecated, use lvs_sync_daemon in global_defs:", name)
			if s, ok := ps.stringArg(n); ok {
				d.syncdIfs = append(d.syncdIfs, trackDraft{pos: n.pos, name: s})
			}
		case "use_vmac":
			if ps.args(n, 0, 2) {
				v.UseVMAC = true
				if len(n.args) > 0 {
					v.VMACInterface = n.args[0]
				}
				if len(n.args) > 1 {
					ps.p.unlikef(n.pos, n.args[1], "use_vmac MAC address not implemented by xlb (it uses 00:00:5e:00:01:VRID), ignored:")
				}
			}
		default:
			ps.unknown(n, ctxInstance)
		}
	}
	for _, o := range ps.instances {
		if o.v.Name == name {
			ps.p.warn(Warning{File: b.pos.File, Line: b.pos.Line, Word: name, Msg: "vrrp_instance already defined at " + o.v.Pos.String() + ":",
				Then: "skipped, as keepalived skips the second block"})
			return
		}
	}
	ps.instances = append(ps.instances, d)
}

func (ps *parser) authentication(b *node, d *instanceDraft) {
	if !ps.needBlock(b) {
		return
	}
	for _, n := range b.children {
		switch n.kw {
		case "auth_type":
			if s, ok := ps.stringArg(n); ok {
				switch s {
				case "PASS":
					d.v.AuthType = AuthPass
				case "AH":
					d.v.AuthType = AuthAH
				default:
					ps.p.errorf(n.pos, s, "auth_type must be PASS or AH, got")
				}
			}
		case "auth_pass":
			if s, ok := ps.stringArg(n); ok {
				if len(s) > 8 {
					ps.p.warnf(n.pos, s, "auth_pass is truncated to 8 characters:")
					s = s[:8]
				}
				d.v.AuthPass = s
			}
		default:
			ps.unknown(n, ctxAuth)
		}
	}
}

// VIP options keepalived accepts that xlb ignores; true if they take a value.
var vipIgnoredOptions = map[string]bool{
	"brd": true, "broadcast": true, "scope": true, "peer": true, "preferred_lft": true,
	"use_vmac": false, "home": false, "-nodad": false, "nodad": false, "mngtmpaddr": false,
	"noprefixroute": false, "autojoin": false, "no_track": false,
}

// vipBlock reads virtual_ipaddress lines:
// "ADDR[/LEN] [dev IF] [label LABEL] [other ip-addr options]".
func (ps *parser) vipBlock(b *node, vips []VirtualIP) []VirtualIP {
	if !ps.needBlock(b) {
		return vips
	}
	for _, n := range b.children {
		if !ps.valueLine(n) {
			continue
		}
		pfx, ok := parseHostOrPrefix(n.kw)
		if !ok {
			ps.p.errorf(n.pos, n.kw, "%s: not an address or prefix:", b.kw)
			continue
		}
		vip := VirtualIP{Prefix: pfx}
		for i := 0; i < len(n.args); i++ {
			opt := n.args[i]
			switch opt {
			case "dev", "label":
				if i+1 >= len(n.args) {
					ps.p.errorf(n.pos, opt, "missing value after")
					ok = false
					break
				}
				if opt == "dev" {
					vip.Dev = n.args[i+1]
				} else {
					vip.Label = n.args[i+1]
				}
				i++
			default:
				takesValue, known := vipIgnoredOptions[opt]
				if !known {
					ps.p.errorf(n.pos, opt, "unknown virtual_ipaddress option")
					ok = false
					break
				}
				ps.p.warnf(n.pos, opt, "virtual_ipaddress option not implemented by xlb, ignored:")
				if takesValue {
					i++
				}
			}
			if !ok {
				break
			}
		}
		if !ok {
			continue
		}
		if len(vips) > 0 && vips[0].Prefix.Addr().Is4() != pfx.Addr().Is4() {
			ps.p.warnf(n.pos, n.kw, "address family differs from the instance's first address; ignoring")
			continue
		}
		vips = append(vips, vip)
	}
	return vips
}

// parseHostOrPrefix reads "ADDR" (a host prefix) or "ADDR/LEN". The
// address keeps its host bits: 10.0.0.100/24 is the address 10.0.0.100 on a
// /24.
func parseHostOrPrefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p, err == nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// unicastPeers reads "IP [min_ttl N] [max_ttl N]" lines. A TTL bound turns
// check_unicast_src on, as in keepalived (vrrp_data.c).
func (ps *parser) unicastPeers(b *node, d *instanceDraft) {
	v := &d.v
	if !ps.needBlock(b) {
		return
	}
	for _, n := range b.children {
		if !ps.valueLine(n) {
			continue
		}
		a, err := netip.ParseAddr(n.kw)
		if err != nil {
			ps.p.errorf(n.pos, n.kw, "unicast_peer: not an IP address:")
			continue
		}
		peer := UnicastPeer{Addr: a, MinTTL: 0, MaxTTL: 255}
		ok := true
		for i := 0; i < len(n.args) && ok; i += 2 {
			opt := n.args[i]
			if opt != "min_ttl" && opt != "max_ttl" {
				ps.p.errorf(n.pos, opt, "unicast_peer takes min_ttl or max_ttl, got")
				ok = false
				break
			}
			if i+1 >= len(n.args) {
				ps.p.errorf(n.pos, opt, "missing value after")
				ok = false
				break
			}
			t, good := parseInt(n.args[i+1])
			if !good || t < 0 || t > 255 {
				ps.p.errorf(n.pos, n.args[i+1], "%s must be an integer in [0, 255], got", opt)
				ok = false
				break
			}
			if opt == "min_ttl" {
				peer.MinTTL = t
			} else {
				peer.MaxTTL = t
			}
			d.ttlBound = true
		}
		if ok {
			v.UnicastPeers = append(v.UnicastPeers, peer)
		}
	}
}

type syncGroupDraft struct {
	g          SyncGroup
	members    []trackDraft // names with their positions
	scripts    []trackDraft
	interfaces []trackDraft
	files      []trackDraft
	smtpAlert  opt[bool]
}

func (ps *parser) syncGroup(b *node) {
	name, ok := ps.blockName(b)
	if !ok {
		return
	}
	d := &syncGroupDraft{g: SyncGroup{Name: name, Pos: b.pos}}
	for _, n := range b.children {
		switch n.kw {
		case "group":
			if ps.needBlock(n) {
				for _, m := range n.children {
					if ps.valueLine(m) {
						for _, w := range m.words {
							d.members = append(d.members, trackDraft{pos: m.pos, name: w})
						}
					}
				}
			}
		case "track_script":
			d.scripts = append(d.scripts, ps.trackScriptEntries(n)...)
		case "track_interface":
			d.interfaces = append(d.interfaces, ps.trackBlock(n, 253)...)
		case "track_file":
			d.files = append(d.files, ps.trackFileEntries(n)...)
		case "notify_master":
			d.g.NotifyMaster = ps.scriptArg(n, true)
		case "notify_backup":
			d.g.NotifyBackup = ps.scriptArg(n, true)
		case "notify_fault":
			d.g.NotifyFault = ps.scriptArg(n, true)
		case "notify_stop":
			d.g.NotifyStop = ps.scriptArg(n, true)
		case "notify":
			d.g.Notify = ps.scriptArg(n, true)
		case "sync_group_tracking_weight":
			d.g.TrackingWeight = ps.flag(n)
		case "smtp_alert":
			if b, ok := ps.optFlag(n); ok {
				d.smtpAlert.put(b)
			}
		default:
			ps.unknown(n, ctxSyncGroup)
		}
	}
	for _, o := range ps.syncGroups {
		if o.g.Name == name {
			ps.p.warn(Warning{File: b.pos.File, Line: b.pos.Line, Word: name, Msg: "vrrp_sync_group already defined at " + o.g.Pos.String() + ":",
				Then: "skipped, as keepalived skips the second block"})
			return
		}
	}
	ps.syncGroups = append(ps.syncGroups, d)
}

// dedupTracks drops repeated names, keeping the first, as keepalived does.
func (ps *parser) dedupTracks(owner, kw string, ts []trackDraft) []trackDraft {
	seen := map[string]bool{}
	var out []trackDraft
	for _, t := range ts {
		if seen[t.name] {
			ps.p.warnf(t.pos, t.name, "(%s) duplicate %s, ignoring:", owner, kw)
			continue
		}
		seen[t.name] = true
		out = append(out, t)
	}
	return out
}

// resolveTracks turns track_script entries into TrackScripts, taking the
// weight from the vrrp_script when the entry has none.
func (ps *parser) resolveTracks(owner string, ts []trackDraft) []TrackScript {
	var out []TrackScript
	for _, t := range ps.dedupTracks(owner, "track_script", ts) {
		s := ps.cfg.Script(t.name)
		if s == nil {
			ps.p.warnf(t.pos, t.name, "(%s) track_script not found, ignoring:", owner)
			continue
		}
		if !slices.ContainsFunc(ps.cfg.Scripts[:t.before], func(s VRRPScript) bool { return s.Name == t.name }) {
			ps.p.warnf(t.pos, t.name, "(%s) vrrp_script must be defined before it is tracked (keepalived: \"track script not found\"); ignoring", owner)
			continue
		}
		tr := TrackScript{Name: t.name, Weight: s.Weight, Reverse: s.Reverse}
		if t.weightSet {
			tr.Weight, tr.Reverse = t.weight, t.reverse
		}
		out = append(out, tr)
	}
	return out
}

func (ps *parser) trackInterfaces(owner string, ts []trackDraft) []TrackInterface {
	var out []TrackInterface
	for _, t := range ps.dedupTracks(owner, "track_interface", ts) {
		out = append(out, TrackInterface{Name: t.name, Weight: t.weight, Reverse: t.reverse})
	}
	return out
}

// finishInstances applies keepalived's defaults and consistency rules
// (vrrp_complete_instance in keepalived's vrrp.c), in keepalived's order.
func (ps *parser) finishInstances() {
	g := &ps.cfg.Global
	for _, d := range ps.instances {
		v := &d.v
		w := func(format string, args ...any) { ps.p.warnf(v.Pos, v.Name, format, args...) }

		if !d.strictSet {
			v.Strict = g.VRRPStrict
		}
		v.SMTPAlert = smtpAlert(d.smtpAlert, g.SMTPAlertVRRP, g.SMTPAlert, false)
		v.CheckUnicastSrc, v.SkipCheckAdvAddr = g.VRRPCheckUnicastSrc, g.VRRPSkipCheckAdvAddr
		if d.checkSrc != nil {
			v.CheckUnicastSrc = *d.checkSrc
		}
		if d.ttlBound {
			v.CheckUnicastSrc = true
		}
		if v.CheckUnicastSrc && len(v.UnicastPeers) == 0 {
			if d.checkSrc != nil && *d.checkSrc {
				w("check_unicast_src has no effect without unicast_peer (adverts are multicast), in")
			}
			v.CheckUnicastSrc = false
		}
		if d.skipAdv != nil {
			v.SkipCheckAdvAddr = *d.skipAdv
		}
		ipv6 := v.IsIPv6()
		v.Version = d.version
		if v.Version == 0 {
			v.Version = g.VRRPVersion
		}
		if ipv6 && v.Version == 2 {
			if d.version == 2 {
				w("IPv6 needs VRRP version 3; using version 3 for")
			}
			v.Version = 3
		}
		if len(v.VirtualIPs) == 0 && (v.Version == 3 || v.Strict) {
			ps.p.errorf(v.Pos, v.Name, "no virtual_ipaddress (at least one is required for VRRPv3 and strict mode) in")
			continue
		}
		if v.VirtualRouterID == 0 {
			ps.p.errorf(v.Pos, v.Name, "virtual_router_id must be set in")
			continue
		}
		if v.Interface == "" && len(v.UnicastPeers) == 0 {
			ps.p.errorf(v.Pos, v.Name, "interface must be set (it may only be left out with unicast peers) in")
			continue
		}
		if v.Strict && len(v.UnicastPeers) > 0 {
			ps.p.errorf(v.Pos, v.Name, "unicast peers are not allowed in strict mode, in")
			continue
		}
		if v.UnicastSrcIP.IsValid() && len(v.VirtualIPs) > 0 && v.UnicastSrcIP.Is6() != ipv6 {
			ps.p.errorf(v.Pos, v.UnicastSrcIP.String(), "unicast_src_ip family differs from the instance's addresses:")
			continue
		}

		// Priority from the state, or the state from the priority.
		v.Priority = uint8(d.priority)
		v.State = d.state
		if d.priority == 0 {
			v.Priority = 100
			if d.state == StateMaster {
				v.Priority = 255
			}
		}
		if v.State == 0 {
			v.State = StateBackup
			if v.Priority == 255 {
				v.State = StateMaster
			}
		} else if v.Strict && (v.State == StateMaster) != (v.Priority == 255) {
			w("strict mode: state MASTER must match priority 255; correcting the state of")
			v.State = StateBackup
			if v.Priority == 255 {
				v.State = StateMaster
			}
		}

		// Authentication is VRRPv2 only, and keepalived drops it otherwise.
		if v.AuthType != AuthNone {
			switch {
			case v.Strict:
				w("strict mode does not allow authentication; ignoring it in")
				v.AuthType, v.AuthPass = AuthNone, ""
			case v.Version == 3:
				w("VRRP version 3 has no authentication; ignoring it in")
				v.AuthType, v.AuthPass = AuthNone, ""
			case v.AuthPass == "":
				w("authentication without auth_pass; ignoring it in")
				v.AuthType = AuthNone
			case ipv6 && v.AuthType == AuthAH:
				w("AH authentication cannot be used with IPv6; ignoring it in")
				v.AuthType, v.AuthPass = AuthNone, ""
			case v.AuthType == AuthAH && v.State == StateMaster && v.Priority != 255:
				w("initial state MASTER is incompatible with AH authentication; using BACKUP for")
				v.State = StateBackup
			}
		} else if v.AuthPass != "" {
			w("auth_pass without auth_type; ignoring it in")
			v.AuthPass = ""
		}

		if v.Priority == 255 && v.Nopreempt {
			w("nopreempt is incompatible with priority 255; clearing it in")
			v.Nopreempt = false
		}
		if v.State == StateMaster {
			if v.Nopreempt {
				w("nopreempt does not work with initial state MASTER; clearing it in")
				v.Nopreempt = false
			}
			if v.PreemptDelay != 0 {
				w("preempt_delay does not work with initial state MASTER; clearing it in")
				v.PreemptDelay = 0
			}
		}
		if v.PreemptDelay != 0 && v.Strict {
			w("preempt_delay is incompatible with strict mode; clearing it in")
			v.PreemptDelay = 0
		}
		if v.PreemptDelay != 0 && v.Nopreempt {
			w("preempt_delay is incompatible with nopreempt; clearing it in")
			v.PreemptDelay = 0
		}

		// The advert interval must fit the version's field.
		v.AdvertInterval = d.advert
		if v.AdvertInterval == 0 {
			v.AdvertInterval = time.Second
		}
		if v.Version == 2 {
			if r := v.AdvertInterval.Round(time.Second); r != v.AdvertInterval {
				if r == 0 {
					r = time.Second
				}
				w("VRRPv2 advert_int must be whole seconds; using %s for", r)
				v.AdvertInterval = r
			}
		} else {
			const maxV3 = 4095 * 10 * time.Millisecond
			if v.AdvertInterval > maxV3 {
				w("VRRPv3 advert_int must be below 40.96s; using 40.95s for")
				v.AdvertInterval = maxV3
			} else if r := v.AdvertInterval.Round(10 * time.Millisecond); r != v.AdvertInterval {
				if r == 0 {
					r = 10 * time.Millisecond
				}
				w("VRRPv3 advert_int must be in units of 10ms; using %s for", r)
				v.AdvertInterval = r
			}
		}

		v.GarpMasterDelay = g.VRRPGarpMasterDelay
		if d.garpDelay != nil {
			v.GarpMasterDelay = *d.garpDelay
		}
		v.GarpMasterRepeat = g.VRRPGarpMasterRepeat
		if d.garpRepeat != 0 {
			v.GarpMasterRepeat = d.garpRepeat
		}
		v.GarpMasterRefresh, v.GarpMasterRefreshRepeat = g.VRRPGarpMasterRefresh, g.VRRPGarpMasterRefreshRepeat
		if d.garpRefresh != nil {
			v.GarpMasterRefresh = *d.garpRefresh
		}
		if d.garpRefreshRepeat != 0 {
			v.GarpMasterRefreshRepeat = d.garpRefreshRepeat
		}

		v.TrackScripts = ps.resolveTracks(v.Name, d.scripts)
		v.TrackInterfaces = ps.trackInterfaces(v.Name, d.interfaces)
		v.TrackFiles = ps.resolveFiles(v.Name, d.files)
		ps.cfg.Instances = append(ps.cfg.Instances, *v)
	}

	// One VRID per interface and family, unless unicast peers keep the
	// instances apart.
	type key struct {
		ifname string
		v6     bool
		vrid   uint8
	}
	seen := map[key]string{}
	for _, v := range ps.cfg.Instances {
		if len(v.UnicastPeers) > 0 {
			continue
		}
		k := key{v.Interface, v.IsIPv6(), v.VirtualRouterID}
		if other, dup := seen[k]; dup {
			ps.p.errorf(v.Pos, v.Name, "virtual_router_id %d on %s is already used by vrrp_instance %s; duplicate in", v.VirtualRouterID, v.Interface, other)
			continue
		}
		seen[k] = v.Name
	}
}

// finishSyncGroups checks membership and applies the tracking rules of sync
// groups and address owners.
func (ps *parser) finishSyncGroups() {
	memberOf := map[string]string{}
	for _, d := range ps.syncGroups {
		g := &d.g
		for _, m := range d.members {
			switch {
			case ps.cfg.Instance(m.name) == nil:
				ps.p.warnf(m.pos, m.name, "(%s) sync group member is not a vrrp_instance; ignoring", g.Name)
			case memberOf[m.name] != "":
				ps.p.warnf(m.pos, m.name, "(%s) vrrp_instance is already in sync group %s; ignoring", g.Name, memberOf[m.name])
			default:
				memberOf[m.name] = g.Name
				g.Instances = append(g.Instances, m.name)
			}
		}
		switch len(g.Instances) {
		case 0:
			ps.p.warnf(g.Pos, g.Name, "sync group has no vrrp_instance; removing")
			continue
		case 1:
			ps.p.warnf(g.Pos, g.Name, "sync group has only one vrrp_instance (probably not what you want):")
		}
		g.TrackScripts = ps.resolveTracks(g.Name, d.scripts)
		g.TrackInterfaces = ps.trackInterfaces(g.Name, d.interfaces)
		g.TrackFiles = ps.resolveFiles(g.Name, d.files)
		g.SMTPAlert = smtpAlert(d.smtpAlert, ps.cfg.Global.SMTPAlertVRRP, ps.cfg.Global.SMTPAlert, false)
		ps.cfg.SyncGroups = append(ps.cfg.SyncGroups, *g)
	}

	for i := range ps.cfg.Instances {
		v := &ps.cfg.Instances[i]
		// Members of a sync group cannot move their priority (the group
		// goes to FAULT instead), unless the group keeps the weights, as
		// keepalived 2.2.7's vrrp_complete_instance: a weighted
		// track_script is removed, a weighted track_interface tracked
		// with weight 0, and track_file entries as unweightFiles says.
		if gname := memberOf[v.Name]; gname != "" {
			var keep bool
			for _, g := range ps.cfg.SyncGroups {
				if g.Name == gname {
					keep = g.TrackingWeight
				}
			}
			if !keep {
				zeroed := false
				var ts []TrackScript
				for _, t := range v.TrackScripts {
					if t.Weight != 0 {
						ps.p.warnf(v.Pos, t.Name, "(%s) ignoring tracked script with weights due to sync group %s (without sync_group_tracking_weight):", v.Name, gname)
						continue
					}
					ts = append(ts, t)
				}
				v.TrackScripts = ts
				for j := range v.TrackInterfaces {
					zeroed = zeroed || v.TrackInterfaces[j].Weight != 0
					v.TrackInterfaces[j].Weight, v.TrackInterfaces[j].Reverse = 0, false
				}
				var files bool
				v.TrackFiles, files = unweightFiles(v.TrackFiles, func(t TrackFileRef) {
					ps.p.warnf(v.Pos, t.Name, "(%s) member of sync group %s (without sync_group_tracking_weight): ignoring weighted track_file", v.Name, gname)
				})
				zeroed = zeroed || files
				if zeroed {
					ps.p.warnf(v.Pos, v.Name, "member of sync group %s (without sync_group_tracking_weight): tracking weights set to 0 in", gname)
				}
			}
		}
		// An address owner's priority cannot move: weighted trackers go.
		if v.Priority == 255 {
			var ts []TrackScript
			for _, t := range v.TrackScripts {
				if t.Weight != 0 {
					ps.p.warnf(v.Pos, t.Name, "(%s) priority 255 cannot change; ignoring weighted track_script", v.Name)
					continue
				}
				ts = append(ts, t)
			}
			v.TrackScripts = ts
			var ti []TrackInterface
			for _, t := range v.TrackInterfaces {
				if t.Weight != 0 {
					ps.p.warnf(v.Pos, t.Name, "(%s) priority 255 cannot change; ignoring weighted track_interface", v.Name)
					continue
				}
				ti = append(ti, t)
			}
			v.TrackInterfaces = ti
			var zeroed bool
			v.TrackFiles, zeroed = unweightFiles(v.TrackFiles, func(t TrackFileRef) {
				ps.p.warnf(v.Pos, t.Name, "(%s) priority 255 cannot change; ignoring weighted track_file", v.Name)
			})
			if zeroed {
				ps.p.warnf(v.Pos, v.Name, "priority 255 cannot change: track_file weight 1 (the default) set to 0 in")
			}
		}
	}
}
