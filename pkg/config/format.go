package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// Format writes c as a keepalived.conf. Every setting is written out, the
// inherited and defaulted ones included, so that parsing the result gives
// back the same Config (positions and warnings aside), and keepalived reads
// it the same way. Comments, includes and the keywords xlb ignores are not
// part of a Config, so they are not written.
func Format(c *Config) []byte {
	f := &formatter{cfg: c}
	f.global(&c.Global)
	for i := range c.Scripts {
		f.script(&c.Scripts[i])
	}
	// Before the instances and sync groups: keepalived only finds a
	// track_file defined above the entry that tracks it.
	for i := range c.TrackFiles {
		f.trackFile(&c.TrackFiles[i])
	}
	for i := range c.Instances {
		f.instance(&c.Instances[i])
	}
	for i := range c.SyncGroups {
		f.syncGroup(&c.SyncGroups[i])
	}
	for i := range c.VirtualServers {
		f.virtualServer(&c.VirtualServers[i])
	}
	return []byte(f.b.String())
}

type formatter struct {
	cfg   *Config
	b     strings.Builder
	depth int
	// laddrGroups: the local_address_group blocks written so far.
	laddrGroups map[string]bool
}

func (f *formatter) line(words ...string) {
	f.b.WriteString(strings.Repeat("    ", f.depth))
	f.b.WriteString(strings.Join(words, " "))
	f.b.WriteByte('\n')
}

func (f *formatter) open(words ...string) {
	f.line(append(words, "{")...)
	f.depth++
}

func (f *formatter) close() {
	f.depth--
	f.line("}")
	if f.depth == 0 {
		f.b.WriteByte('\n')
	}
}

func (f *formatter) global(g *GlobalDefs) {
	f.open("global_defs")
	if g.RouterID != "" {
		f.line("router_id", word(g.RouterID))
	}
	if len(g.NotificationEmail) > 0 {
		f.open("notification_email")
		for _, e := range g.NotificationEmail {
			f.line(word(e))
		}
		f.close()
	}
	if g.NotificationEmailFrom != "" {
		f.line("notification_email_from", word(g.NotificationEmailFrom))
	}
	if g.SMTPServer != "" {
		f.line("smtp_server", word(g.SMTPServer), u(g.SMTPPort))
	}
	f.line("smtp_connect_timeout", wholeSeconds(g.SMTPConnectTimeout))
	if g.SMTPHeloName != "" {
		f.line("smtp_helo_name", word(g.SMTPHeloName))
	}
	for _, a := range []struct {
		kw string
		b  *bool
	}{{"smtp_alert", g.SMTPAlert}, {"smtp_alert_vrrp", g.SMTPAlertVRRP}, {"smtp_alert_checker", g.SMTPAlertChecker}} {
		if a.b != nil {
			f.line(a.kw, onOff(*a.b))
		}
	}
	if g.NoEmailFaults {
		f.line("no_email_faults")
	}
	if g.NoCheckerEmails {
		f.line("no_checker_emails")
	}
	f.line("vrrp_version", strconv.Itoa(g.VRRPVersion))
	f.line("vrrp_garp_master_delay", wholeSeconds(g.VRRPGarpMasterDelay))
	f.line("vrrp_garp_master_repeat", strconv.Itoa(g.VRRPGarpMasterRepeat))
	f.line("vrrp_garp_master_refresh", wholeSeconds(g.VRRPGarpMasterRefresh))
	f.line("vrrp_garp_master_refresh_repeat", strconv.Itoa(g.VRRPGarpMasterRefreshRepeat))
	if g.VRRPStrict {
		f.line("vrrp_strict")
	}
	if g.CheckViaVIP {
		f.line("check_via_vip")
	}
	f.line("vrrp_mcast_group4", g.VRRPMcastGroup4.String())
	f.line("vrrp_mcast_group6", g.VRRPMcastGroup6.String())
	if g.EnableScriptSecurity {
		f.line("enable_script_security")
	}
	if g.ScriptUser != "" || g.ScriptGroup != "" {
		f.line(userGroup("script_user", g.ScriptUser, g.ScriptGroup)...)
	}
	t := g.LVSTimeouts
	if t != (LVSTimeouts{}) {
		w := []string{"lvs_timeouts"}
		for _, kv := range []struct {
			k string
			v time.Duration
		}{{"tcp", t.TCP}, {"tcpfin", t.TCPFin}, {"udp", t.UDP}} {
			if kv.v != 0 {
				w = append(w, kv.k, wholeSeconds(kv.v))
			}
		}
		f.line(w...)
	}
	if sd := g.LVSSyncDaemon; sd != nil {
		// An lvs_sync_daemon_interface is written as the lvs_sync_daemon
		// it stands for: its instance, and "id 0".
		w := []string{"lvs_sync_daemon", word(sd.Interface)}
		if sd.Instance != "" {
			w = append(w, "inst", word(sd.Instance))
		}
		if sd.SyncIDSet {
			w = append(w, "id", u(sd.SyncID))
		}
		for _, kv := range []struct {
			k string
			v uint16
		}{{"maxlen", sd.MaxLen}, {"port", sd.Port}, {"ttl", uint16(sd.TTL)}} {
			if kv.v != 0 {
				w = append(w, kv.k, u(kv.v))
			}
		}
		if sd.Group.IsValid() {
			w = append(w, "group", addr(sd.Group))
		}
		f.line(w...)
	}
	f.close()
}

func (f *formatter) script(s *VRRPScript) {
	f.open("vrrp_script", word(s.Name))
	f.line("script", command(s.Script.Args))
	f.line("interval", wholeSeconds(s.Interval))
	f.line("timeout", wholeSeconds(s.Timeout))
	f.line(appendReverse([]string{"weight", strconv.Itoa(s.Weight)}, s.Reverse)...)
	f.line("rise", strconv.Itoa(s.Rise))
	f.line("fall", strconv.Itoa(s.Fall))
	if s.Script.User != "" || s.Script.Group != "" {
		f.line(userGroup("user", s.Script.User, s.Script.Group)...)
	}
	if s.InitFail {
		f.line("init_fail")
	}
	f.close()
}

func (f *formatter) trackFile(t *TrackFile) {
	f.open("track_file", word(t.Name))
	f.line("file", word(t.Path))
	f.line(appendReverse([]string{"weight", strconv.Itoa(t.Weight)}, t.Reverse)...)
	if t.InitFile {
		w := []string{"init_file", strconv.FormatInt(t.InitValue, 10)}
		if t.Overwrite {
			w = append(w, "overwrite")
		}
		f.line(w...)
	}
	f.close()
}

// userGroup writes "kw USER [GROUP]".
func userGroup(kw, user, group string) []string {
	w := []string{kw, word(user)}
	if group != "" {
		w = append(w, word(group))
	}
	return w
}

func appendReverse(w []string, rev bool) []string {
	if rev {
		return append(w, "reverse")
	}
	return w
}

func (f *formatter) instance(v *VRRPInstance) {
	f.open("vrrp_instance", word(v.Name))
	f.line("state", v.State.String())
	if v.Interface != "" {
		f.line("interface", word(v.Interface))
	}
	f.line("virtual_router_id", u(v.VirtualRouterID))
	f.line("priority", u(v.Priority))
	f.line("advert_int", seconds(v.AdvertInterval))
	f.line("version", strconv.Itoa(v.Version))
	f.line("strict_mode", onOff(v.Strict))
	if v.AuthType != AuthNone {
		f.open("authentication")
		f.line("auth_type", v.AuthType.String())
		f.line("auth_pass", word(v.AuthPass))
		f.close()
	}
	f.vips("virtual_ipaddress", v.VirtualIPs)
	f.vips("virtual_ipaddress_excluded", v.ExcludedVirtualIPs)
	f.tracks(v.TrackScripts, v.TrackInterfaces)
	f.trackFileRefs(v.TrackFiles)
	if v.Nopreempt {
		f.line("nopreempt")
	}
	if v.PreemptDelay != 0 {
		f.line("preempt_delay", seconds(v.PreemptDelay))
	}
	if v.UnicastSrcIP.IsValid() {
		f.line("unicast_src_ip", addr(v.UnicastSrcIP))
	}
	if len(v.UnicastPeers) > 0 {
		f.open("unicast_peer")
		for _, p := range v.UnicastPeers {
			// A TTL bound turns check_unicast_src on: only written when
			// it says something.
			w := []string{addr(p.Addr)}
			if p.MinTTL != 0 {
				w = append(w, "min_ttl", strconv.Itoa(p.MinTTL))
			}
			if p.MaxTTL != 255 {
				w = append(w, "max_ttl", strconv.Itoa(p.MaxTTL))
			}
			f.line(w...)
		}
		f.close()
	}
	f.notifies(v.NotifyMaster, v.NotifyBackup, v.NotifyFault, v.NotifyStop, v.Notify)
	f.line("smtp_alert", onOff(v.SMTPAlert))
	f.line("garp_master_delay", wholeSeconds(v.GarpMasterDelay))
	f.line("garp_master_repeat", strconv.Itoa(v.GarpMasterRepeat))
	f.line("garp_master_refresh", wholeSeconds(v.GarpMasterRefresh))
	f.line("garp_master_refresh_repeat", strconv.Itoa(v.GarpMasterRefreshRepeat))
	if v.CheckUnicastSrc {
		f.line("check_unicast_src")
	}
	if v.SkipCheckAdvAddr {
		f.line("skip_check_adv_addr")
	}
	if v.UseVMAC {
		w := []string{"use_vmac"}
		if v.VMACInterface != "" {
			w = append(w, word(v.VMACInterface))
		}
		f.line(w...)
	}
	f.close()
}

func (f *formatter) vips(kw string, vips []VirtualIP) {
	if len(vips) == 0 {
		return
	}
	f.open(kw)
	for _, vip := range vips {
		w := []string{vip.Prefix.String()}
		if vip.Dev != "" {
			w = append(w, "dev", word(vip.Dev))
		}
		if vip.Label != "" {
			w = append(w, "label", word(vip.Label))
		}
		f.line(w...)
	}
	f.close()
}

func (f *formatter) tracks(ts []TrackScript, ti []TrackInterface) {
	if len(ts) > 0 {
		f.open("track_script")
		for _, t := range ts {
			f.line(appendReverse([]string{word(t.Name), "weight", strconv.Itoa(t.Weight)}, t.Reverse)...)
		}
		f.close()
	}
	if len(ti) > 0 {
		f.open("track_interface")
		for _, t := range ti {
			f.line(appendReverse([]string{word(t.Name), "weight", strconv.Itoa(t.Weight)}, t.Reverse)...)
		}
		f.close()
	}
}

// trackFileRefs writes track_file entries, with the weight and reverse flag
// only where they differ from the block's, which an entry inherits
// separately.
func (f *formatter) trackFileRefs(refs []TrackFileRef) {
	if len(refs) == 0 {
		return
	}
	f.open("track_file")
	for _, r := range refs {
		w := []string{word(r.Name)}
		if tf := f.cfg.TrackFile(r.Name); tf == nil || tf.Weight != r.Weight || tf.Reverse != r.Reverse {
			w = append(w, "weight", strconv.Itoa(r.Weight))
			switch {
			case r.Reverse:
				w = append(w, "reverse")
			case tf != nil && tf.Reverse:
				w = append(w, "noreverse")
			}
		}
		f.line(w...)
	}
	f.close()
}

func (f *formatter) notifies(master, backup, fault, stop, any *Script) {
	for _, n := range []struct {
		kw string
		s  *Script
	}{{"notify_master", master}, {"notify_backup", backup}, {"notify_fault", fault}, {"notify_stop", stop}, {"notify", any}} {
		f.notify(n.kw, n.s)
	}
}

// notify writes "kw COMMAND [user [group]]".
func (f *formatter) notify(kw string, s *Script) {
	if s == nil {
		return
	}
	w := []string{kw, command(s.Args)}
	if s.User != "" || s.Group != "" {
		w = append(w, shellWord(s.User))
	}
	if s.Group != "" {
		w = append(w, shellWord(s.Group))
	}
	f.line(w...)
}

func (f *formatter) syncGroup(g *SyncGroup) {
	f.open("vrrp_sync_group", word(g.Name))
	f.open("group")
	for _, m := range g.Instances {
		f.line(word(m))
	}
	f.close()
	f.tracks(g.TrackScripts, g.TrackInterfaces)
	f.trackFileRefs(g.TrackFiles)
	f.notifies(g.NotifyMaster, g.NotifyBackup, g.NotifyFault, g.NotifyStop, g.Notify)
	if g.TrackingWeight {
		f.line("sync_group_tracking_weight")
	}
	f.line("smtp_alert", onOff(g.SMTPAlert))
	f.close()
}

func (f *formatter) virtualServer(vs *VirtualServer) {
	if vs.LocalAddrGroup != "" && !f.laddrGroups[vs.LocalAddrGroup] {
		f.open("local_address_group", word(vs.LocalAddrGroup))
		for _, a := range vs.LocalAddrs {
			f.line(addr(a))
		}
		f.close()
		if f.laddrGroups == nil {
			f.laddrGroups = map[string]bool{}
		}
		f.laddrGroups[vs.LocalAddrGroup] = true
	}
	switch {
	case vs.Group != "":
		f.open("virtual_server_group", word(vs.Group))
		for _, e := range vs.Entries {
			if e.FWMark != 0 {
				fam := "inet"
				if e.Family == 6 {
					fam = "inet6"
				}
				f.line("fwmark", u(e.FWMark), fam)
			} else {
				f.line(addr(e.Addr), u(e.Port))
			}
		}
		f.close()
		f.open("virtual_server", "group", word(vs.Group))
	case vs.FWMark != 0:
		f.open("virtual_server", "fwmark", u(vs.FWMark))
	default:
		f.open("virtual_server", addr(vs.Addr), u(vs.Port))
	}
	if vs.Protocol != 0 {
		f.line("protocol", vs.Protocol.String())
	}
	f.line("lvs_sched", vs.Scheduler)
	f.line(methodWords("lvs_method", vs.Forward, vs.Tunnel)...)
	if vs.SchedFlags&lvs.OnePacket != 0 {
		f.line("ops")
	}
	if s, ok := sched.Lookup(vs.Scheduler); ok {
		for _, fl := range s.Flags {
			if vs.SchedFlags&fl.Bit != 0 {
				f.line(fl.Name)
			}
		}
	}
	if vs.PersistenceTimeout != 0 {
		f.line("persistence_timeout", wholeSeconds(vs.PersistenceTimeout))
	}
	if vs.PersistenceGranularity.Or(vs.Addr) != lvs.FullNetmask(vs.Addr) {
		f.line("persistence_granularity", vs.PersistenceGranularity.Format(vs.Addr))
	}
	f.line("delay_loop", seconds(vs.DelayLoop))
	if vs.Quorum != 0 {
		// quorum 0 only comes from real servers weighing 0 in total.
		f.line("quorum", u(vs.Quorum))
	}
	if vs.Hysteresis != 0 {
		f.line("hysteresis", u(vs.Hysteresis))
	}
	if vs.Alpha {
		f.line("alpha")
	}
	if vs.Omega {
		f.line("omega")
	}
	f.notify("quorum_up", vs.QuorumUp)
	f.notify("quorum_down", vs.QuorumDown)
	f.line("smtp_alert", onOff(vs.SMTPAlert))
	f.line("check_via_vip", onOff(vs.CheckViaVIP))
	if vs.LocalAddrGroup != "" {
		f.line("laddr_group_name", word(vs.LocalAddrGroup))
	}
	if vs.TOA {
		f.line("toa")
	}
	if vs.InhibitOnFailure {
		f.line("inhibit_on_failure")
	}
	if ss := vs.SorryServer; ss != nil {
		f.line("sorry_server", addr(ss.Addr), u(ss.Port))
		f.line(methodWords("sorry_server_lvs_method", ss.Forward, ss.Tunnel)...)
		if ss.InhibitOnFailure {
			f.line("sorry_server_inhibit")
		}
	}
	for i := range vs.Reals {
		f.realServer(vs, &vs.Reals[i])
	}
	f.close()
}

func (f *formatter) realServer(vs *VirtualServer, rs *RealServer) {
	if rs.Port == 0 {
		f.open("real_server", addr(rs.Addr)) // the packet's own port
	} else {
		f.open("real_server", addr(rs.Addr), u(rs.Port))
	}
	f.line("weight", strconv.Itoa(rs.Weight))
	f.line(methodWords("lvs_method", rs.Forward, rs.Tunnel)...)
	f.line("inhibit_on_failure", onOff(rs.InhibitOnFailure))
	f.line("alpha", onOff(rs.Alpha))
	if rs.UThreshold != 0 {
		f.line("uthreshold", u(rs.UThreshold))
	}
	if rs.LThreshold != 0 {
		f.line("lthreshold", u(rs.LThreshold))
	}
	f.notify("notify_up", rs.NotifyUp)
	f.notify("notify_down", rs.NotifyDown)
	f.line("smtp_alert", onOff(rs.SMTPAlert))
	for i := range rs.Checkers {
		f.checker(vs, rs, &rs.Checkers[i])
	}
	f.close()
}

func (f *formatter) checker(vs *VirtualServer, rs *RealServer, c *Checker) {
	f.open(c.Kind.String())
	if c.Kind == FileCheck {
		f.line("track_file", word(c.TrackFile))
		f.line(appendReverse([]string{"weight", strconv.Itoa(c.FileWeight)}, c.FileReverse)...)
		f.close()
		return
	}
	if c.Kind != MiscCheck {
		// Written only when they differ from the real server's, which is
		// also the only way to carry port 0 (connect_port is 1..65535).
		if c.ConnectIP != rs.Addr {
			f.line("connect_ip", addr(c.ConnectIP))
		}
		if c.ConnectPort != rs.Port {
			f.line("connect_port", u(c.ConnectPort))
		}
		if c.BindTo.IsValid() {
			f.line("bindto", addr(c.BindTo))
		}
		if c.BindPort != 0 {
			f.line("bind_port", u(c.BindPort))
		}
		if c.BindIf != "" {
			f.line("bind_if", word(c.BindIf))
		}
		f.line("connect_timeout", seconds(c.ConnectTimeout))
	}
	f.line("retry", strconv.Itoa(c.Retry))
	f.line("delay_before_retry", seconds(c.DelayBeforeRetry))
	f.line("delay_loop", seconds(c.DelayLoop))
	f.line("warmup", seconds(c.Warmup))
	f.line("alpha", onOff(c.Alpha))
	switch c.Kind {
	case HTTPGet, SSLGet:
		f.line("http_protocol", c.HTTPProtocol)
		if c.FastRecovery {
			f.line("fast_recovery")
		}
		if c.EnableSNI {
			f.line("enable_sni")
		}
		for _, url := range c.URLs {
			f.open("url")
			f.line("path", word(url.Path))
			if url.Digest != "" {
				f.line("digest", url.Digest)
			}
			codes := []string{"status_code"}
			for _, r := range url.StatusCodes {
				if r.Min == r.Max {
					codes = append(codes, strconv.Itoa(r.Min))
				} else {
					codes = append(codes, fmt.Sprintf("%d-%d", r.Min, r.Max))
				}
			}
			f.line(codes...)
			if url.Virtualhost != "" {
				f.line("virtualhost", word(url.Virtualhost))
			}
			if rx := url.Regex; rx != nil {
				f.urlRegex(rx)
			}
			f.close()
		}
	case MiscCheck:
		if c.Misc != nil {
			f.line("misc_path", command(c.Misc.Args))
			if c.Misc.User != "" || c.Misc.Group != "" {
				f.line(userGroup("user", c.Misc.User, c.Misc.Group)...)
			}
		}
		// The default is the virtual server's delay_loop, which need not
		// be whole seconds as misc_timeout must.
		if c.MiscTimeout != vs.DelayLoop {
			f.line("misc_timeout", wholeSeconds(c.MiscTimeout))
		}
		if c.MiscDynamic {
			f.line("misc_dynamic")
		}
	case DNSCheck:
		f.line("type", c.DNSType)
		f.line("name", word(c.DNSName))
	case SMTPCheck:
		f.line("helo_name", word(c.HeloName))
	case UDPCheck:
		if c.Payload != nil {
			f.line("payload", hexString(c.Payload, nil))
		}
		if c.RequireReply {
			if c.ReplyData != nil {
				f.line("require_reply", hexString(c.ReplyData, c.ReplyMask))
			} else {
				f.line("require_reply")
			}
		}
		f.line("min_reply_length", strconv.Itoa(c.MinReplyLength))
		f.line("max_reply_length", strconv.Itoa(c.MaxReplyLength))
	}
	f.close()
}

// urlRegex writes a url's regex settings. The pattern goes as one word
// that keepalived's re-reading of the line decodes back.
func (f *formatter) urlRegex(rx *URLRegex) {
	p := rx.Pattern
	if printable(p) && !strings.ContainsAny(p, "\"\\") {
		f.line("regex", `"`+p+`"`)
	} else {
		f.line("regex", escapeAll(p))
	}
	if len(rx.Options) > 0 {
		f.line(append([]string{"regex_options"}, rx.Options...)...)
	}
	if rx.NoMatch {
		f.line("regex_no_match")
	}
	if rx.MinOffset != 0 {
		f.line("regex_min_offset", strconv.FormatInt(rx.MinOffset, 10))
	}
	if rx.MaxOffset >= 0 {
		f.line("regex_max_offset", strconv.FormatInt(rx.MaxOffset, 10))
	}
}

// hexString writes bytes as UDP_CHECK's hex strings, x for each masked
// nibble.
func hexString(data, mask []byte) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i, v := range data {
		var m byte
		if i < len(mask) {
			m = mask[i]
		}
		for _, sh := range []uint{4, 0} {
			if m>>sh&0xf != 0 {
				b.WriteByte('x')
			} else {
				b.WriteByte(digits[v>>sh&0xf])
			}
		}
	}
	return b.String()
}

func u[T uint8 | uint16 | uint32](v T) string { return strconv.FormatUint(uint64(v), 10) }

// addr writes an address; an IPv6 zone may hold any characters.
func addr(a netip.Addr) string { return word(a.String()) }

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// seconds writes a <TIMER>: decimal seconds, exact to the microsecond.
func seconds(d time.Duration) string {
	s := strconv.FormatInt(int64(d/time.Second), 10)
	us := int64(d%time.Second) / int64(time.Microsecond)
	if us == 0 {
		return s
	}
	return strings.TrimRight(fmt.Sprintf("%s.%06d", s, us), "0")
}

func wholeSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10)
}

// word writes a value so that keepalived's line splitting reads it back:
// bare when that is safe, else in double quotes. (A value read from a file
// never holds a double quote; see splitWords.)
func word(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\f\v\r\n#!{}\"") || strings.ContainsAny(s[:1], "@$~") {
		return `"` + s + `"`
	}
	return s
}

// command writes a script's argument vector as the one word keepalived
// re-splits: "a b 'c d'". Arguments with characters the configuration
// syntax treats specially fall back to octal escapes, which keepalived's
// script splitting decodes.
func command(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	s := strings.Join(quoted, " ")
	if !strings.ContainsAny(s, "\"\\") && printable(s) {
		return `"` + s + `"`
	}
	return escapeAll(s)
}

// shellQuote quotes one argument for splitShell.
func shellQuote(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\f\v\r\n'\"\\") {
		return a
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(a) + "'"
}

// shellWord writes a word splitShell reads back as s (a script's user or
// group).
func shellWord(s string) string {
	if s != "" && printable(s) && !strings.ContainsAny(s, " \t'\"\\#!{}") && !strings.ContainsAny(s[:1], "@$~") {
		return s
	}
	if s == "" {
		return "''"
	}
	return escapeAll(s)
}

// escapeAll writes every byte that is not plainly safe as a 3-digit octal
// escape: no blanks, quotes, comment or brace characters survive, so the
// result is one word to every stage of keepalived's reading.
func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strings.IndexByte("/._-:,+=%", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\%03o`, c)
		}
	}
	return b.String()
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// methodWords is an lvs_method line: a TUN server's tunnel options when
// they are not the default ipip.
func methodWords(kw string, f lvs.Forward, t lvs.Tunnel) []string {
	w := []string{kw, f.Kind()}
	if f != lvs.TUN || t == (lvs.Tunnel{}) {
		return w
	}
	w = append(w, "type", t.Type.String())
	if t.Port != 0 {
		w = append(w, "port", strconv.Itoa(int(t.Port)))
	}
	if t.Flags != lvs.TunNoCsum {
		w = append(w, t.Flags.String())
	}
	return w
}
