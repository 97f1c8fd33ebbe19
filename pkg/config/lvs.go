package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xlbproject/xlb/internal/cnum"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// The defaults of keepalived's check_data.c and the checkers.
const (
	defaultDelayLoop          = 60 * time.Second
	defaultConnectTimeout     = 5 * time.Second
	defaultPersistenceTimeout = 360 * time.Second // IPVS_SVC_PERSISTENT_TIMEOUT
	maxWeight                 = math.MaxInt32
)

// opt is a setting that may be inherited: virtual server -> real server ->
// checker.
type opt[T any] struct {
	v   T
	set bool
}

func (o *opt[T]) put(v T) { o.v, o.set = v, true }

// or returns the value if set, else the fallback.
func (o opt[T]) or(fallback T) T {
	if o.set {
		return o.v
	}
	return fallback
}

// inherited are the settings a real server takes from its virtual server and
// a checker from its real server.
type inherited struct {
	connectTimeout   opt[time.Duration]
	retry            opt[int]
	delayBeforeRetry opt[time.Duration]
	delayLoop        opt[time.Duration]
	warmup           opt[time.Duration]
	alpha            opt[bool]
	inhibit          opt[bool]
	virtualhost      opt[string]
}

type vsDraft struct {
	vs          VirtualServer
	inh         inherited
	weight      opt[int]
	protocol    opt[lvs.Protocol]
	scheduler   opt[string]
	forward     opt[method]
	persistence opt[time.Duration]
	granularity opt[lvs.Netmask]
	sorryFwd    opt[method]
	sorryPos    Pos
	flagWords   []flagWord // sh-port, mh-fallback, ...: checked against the scheduler
	smtpAlert   opt[bool]
	checkViaVIP opt[bool]
	// laddrGroup: laddr_group_name (keepalived-DPVS's), where it was.
	laddrGroup    opt[string]
	laddrGroupPos Pos
	toa           opt[bool]
	toaPos        Pos
	// reals are the drafts of the real_server blocks while the virtual
	// server is read; then (resolveReals) rs, and rsLater what the end
	// of the file settles of each.
	reals   []*rsDraft
	rs      []RealServer
	rsLater []realLater
}

// realLater is what finishVirtualServers settles of a real: its
// smtp_alert, which defaults to the globals', and the port of its
// checkers that connect to the real's (portFromReal), which only NAT may
// change.
type realLater struct {
	smtpAlert    opt[bool]
	portFromReal []bool
}

// flagWord is a scheduler flag keyword and where it was (not its node:
// the nodes go once their top-level block is read).
type flagWord struct {
	kw  string
	pos Pos
}

type rsDraft struct {
	rs        RealServer
	inh       inherited
	weight    opt[int]
	forward   opt[method]
	smtpAlert opt[bool]
	checkers  []*checkerDraft
}

type checkerDraft struct {
	c           Checker
	inh         inherited
	connectIP   opt[netip.Addr]
	connectPort opt[uint16]
	miscTimeout opt[time.Duration]
	miscUser    string
	miscGroup   string
	hasURL      bool
	// SMTP_CHECK: its host blocks, and whether the block set a connection
	// option of its own (see smtpCheckers).
	hosts   []*checkerDraft
	connSet bool
	// FILE_CHECK: whether the block set the weight.
	fileWeightSet bool
}

func (ps *parser) virtualServer(b *node) {
	if !ps.needBlock(b) {
		return
	}
	if len(b.args) == 0 {
		ps.p.errorf(b.pos, b.kw, "missing address after")
		return
	}
	d := &vsDraft{vs: VirtualServer{Pos: b.pos}}
	vs := &d.vs
	switch b.args[0] {
	case "group":
		if len(b.args) < 2 {
			ps.p.errorf(b.pos, b.args[0], "virtual_server group needs a name:")
			return
		}
		vs.Group = b.args[1]
	case "fwmark":
		if len(b.args) < 2 {
			ps.p.errorf(b.pos, b.args[0], "virtual_server fwmark needs a number:")
			return
		}
		v, ok := ps.uintArgNamed(b, 1, 1, math.MaxUint32, "virtual_server fwmark")
		if !ok {
			return // keepalived: "must be in [0, 4294967295] - ignoring"
		}
		vs.FWMark = uint32(v)
	default:
		addr, err := netip.ParseAddr(b.args[0])
		if err != nil {
			ps.p.errorf(b.pos, b.args[0], "virtual_server: not an IP address:")
			return
		}
		vs.Addr = addr
		if len(b.args) > 1 {
			p, ok := ps.portArg(b, 1, 0)
			if !ok {
				return
			}
			vs.Port = p
		}
	}
	if len(b.args) > 2 {
		ps.p.warnf(b.pos, b.args[2], "extra words after virtual_server %s ignored, from", b.args[0])
	}

	for _, n := range b.children {
		if ps.inheritedKeyword(n, &d.inh, ctxVirtualServer) {
			continue
		}
		switch n.kw {
		case "lvs_sched", "lb_algo":
			if s, ok := ps.stringArg(n); ok {
				if _, ok := sched.Lookup(s); !ok {
					ps.p.ignoref(n.pos, s, "unknown scheduler (want one of %s):", strings.Join(sched.Names(nil), " "))
				} else {
					d.scheduler.put(s)
				}
			}
		case "lvs_method", "lb_kind":
			if f, ok := ps.forwardArg(n); ok {
				d.forward.put(f)
			}
		case "protocol":
			if s, ok := ps.stringArg(n); ok {
				switch strings.ToUpper(s) {
				case "TCP":
					d.protocol.put(lvs.TCP)
				case "UDP":
					d.protocol.put(lvs.UDP)
				case "SCTP":
					d.protocol.put(lvs.SCTP)
				default:
					ps.p.errorf(n.pos, s, "protocol must be TCP, UDP or SCTP, got")
				}
			}
		case "persistence_timeout":
			if !ps.args(n, 0, 1) {
				continue
			}
			if len(n.args) == 0 {
				d.persistence.put(defaultPersistenceTimeout)
			} else if t, ok := ps.secondsArg(n, 1, 2678400); ok {
				d.persistence.put(t)
			}
		case "persistence_granularity":
			if s, ok := ps.stringArg(n); ok {
				if bits, ok := ps.granularity(n, s, vs.Addr); ok {
					d.granularity.put(bits)
				}
			}
		case "quorum":
			if v, ok := ps.one(n, 1, math.MaxUint32); ok {
				vs.Quorum = uint32(v)
			}
		case "hysteresis":
			if v, ok := ps.one(n, 0, math.MaxUint32); ok {
				vs.Hysteresis = uint32(v)
			}
		case "omega":
			vs.Omega = ps.vsFlag(n)
		case "quorum_up":
			vs.QuorumUp = ps.scriptArg(n, true)
		case "quorum_down":
			vs.QuorumDown = ps.scriptArg(n, true)
		case "weight":
			if v, ok := ps.one(n, 0, maxWeight); ok {
				d.weight.put(int(v))
			}
		case "sorry_server":
			if ps.args(n, 1, 2) {
				a, ok := ps.addrArg(n, 0)
				if !ok {
					continue
				}
				ss := &SorryServer{Addr: a}
				if len(n.args) > 1 {
					if ss.Port, ok = ps.portArg(n, 1, 0); !ok {
						continue
					}
				}
				if vs.SorryServer != nil {
					ss.InhibitOnFailure = vs.SorryServer.InhibitOnFailure
				}
				vs.SorryServer = ss
				d.sorryPos = n.pos
			}
		case "sorry_server_inhibit":
			if vs.SorryServer == nil {
				ps.p.warnf(n.pos, n.kw, "ignoring, no sorry_server before it:")
				continue
			}
			vs.SorryServer.InhibitOnFailure = ps.flag(n)
		case "sorry_server_lvs_method":
			if f, ok := ps.forwardArg(n); ok {
				if vs.SorryServer == nil {
					ps.p.warnf(n.pos, n.kw, "ignoring, no sorry_server before it:")
					continue
				}
				d.sorryFwd.put(f)
			}
		case "sh-port", "sh-fallback", "mh-port", "mh-fallback", "ops", "sloppy_tcp", "sloppy_sctp":
			if ps.args(n, 0, 0) {
				d.flagWords = append(d.flagWords, flagWord{n.kw, n.pos})
			}
		case "smtp_alert":
			if b, ok := ps.optFlag(n); ok {
				d.smtpAlert.put(b)
			}
		case "check_via_vip":
			if b, ok := ps.optFlag(n); ok {
				d.checkViaVIP.put(b)
			}
		case "toa":
			if b, ok := ps.optFlag(n); ok {
				d.toa.put(b)
				d.toaPos = n.pos
			}
		case "laddr_group_name":
			if s, ok := ps.stringArg(n); ok {
				d.laddrGroup.put(s)
				d.laddrGroupPos = n.pos
			}
		case "real_server":
			if rs := ps.realServer(n); rs != nil {
				d.reals = append(d.reals, rs)
			}
		default:
			ps.unknown(n, ctxVirtualServer)
		}
	}
	ps.resolveReals(d)
	ps.vss = append(ps.vss, d)
}

// inheritedKeyword handles the settings virtual servers, real servers and
// checkers share, reporting whether n was one.
func (ps *parser) inheritedKeyword(n *node, inh *inherited, ctx string) bool {
	switch n.kw {
	case "connect_timeout":
		if ctx == ctxMiscCheck {
			return false
		}
		if t, ok := ps.timerArg(n, time.Microsecond, 4294967295*time.Microsecond); ok {
			inh.connectTimeout.put(t)
		}
	case "retry", "nb_get_retry":
		if n.kw == "nb_get_retry" {
			// keepalived 2.2.7 knows it in HTTP_GET and SSL_GET only; in
			// other checkers it is an unknown keyword, and ignored.
			if ctx != ctxHTTPGet && ctx != ctxSSLGet {
				return false
			}
			ps.p.warnf(n.pos, n.kw, "deprecated, use retry:")
		}
		// keepalived refuses 0 above the checkers.
		min := uint64(1)
		if isChecker(ctx) {
			min = 0
		}
		if v, ok := ps.one(n, min, math.MaxUint32); ok {
			inh.retry.put(int(v))
		}
	case "delay_before_retry":
		if t, ok := ps.timerArg(n, 0, maxTimer); ok {
			inh.delayBeforeRetry.put(t)
		}
	case "delay_loop":
		if t, ok := ps.timerArg(n, time.Microsecond, maxTimer); ok {
			inh.delayLoop.put(t)
		}
	case "warmup":
		if t, ok := ps.timerArg(n, 0, maxTimer); ok {
			inh.warmup.put(t)
		}
	case "alpha":
		if ctx == ctxVirtualServer {
			inh.alpha.put(ps.vsFlag(n))
		} else {
			inh.alpha.put(ps.flag(n))
		}
	case "inhibit_on_failure":
		if isChecker(ctx) {
			return false
		}
		inh.inhibit.put(ps.flag(n))
	case "virtualhost":
		if isChecker(ctx) && ctx != ctxHTTPGet && ctx != ctxSSLGet {
			return false
		}
		if s, ok := ps.stringArg(n); ok {
			inh.virtualhost.put(s)
		}
	default:
		return false
	}
	return true
}

// vsFlag reads alpha or omega in a virtual_server, where keepalived 2.2.7
// turns them on whatever follows ("alpha 1", "omega no").
func (ps *parser) vsFlag(n *node) bool {
	if !ps.leaf(n) {
		return false
	}
	if len(n.args) > 0 {
		ps.p.warn(Warning{File: n.pos.File, Line: n.pos.Line, Word: n.args[0], Msg: fmt.Sprintf("%s takes no value in a virtual_server, got", n.kw),
			Then: "read as on, as keepalived reads it"})
	}
	return true
}

func isChecker(ctx string) bool {
	switch ctx {
	case ctxTCPCheck, ctxHTTPGet, ctxSSLGet, ctxMiscCheck, ctxDNSCheck,
		ctxSMTPCheck, ctxSMTPHost, ctxUDPCheck, ctxPingCheck, ctxFileCheck:
		return true
	}
	return false
}

// method is an lvs_method line: the forwarding method, and a TUN
// server's tunnel.
type method struct {
	fwd lvs.Forward
	tun lvs.Tunnel
}

// forwardArg reads lvs_method (lb_kind, sorry_server_lvs_method): NAT, DR,
// or TUN with keepalived's tunnel options (type ipip|gue|gre, port N,
// nocsum|csum|remcsum). As keepalived, a bad tunnel option is reported
// and the method is still TUN, with the default (ipip) tunnel.
func (ps *parser) forwardArg(n *node) (method, bool) {
	if !ps.args(n, 1, -1) {
		return method{}, false
	}
	var m method
	switch n.args[0] {
	case "NAT":
		m.fwd = lvs.NAT
	case "DR":
		m.fwd = lvs.DR
	case "TUN":
		m.fwd = lvs.TUN
	case "FNAT":
		// The keepalived that ships with DPVS; keepalived 2.2.7 has no
		// FULLNAT ("unknown [FNAT] routing method") and makes it NAT.
		m.fwd = lvs.FNAT
	default:
		// keepalived: "unknown [X] routing method", the method left unset
		// (NAT unless set elsewhere); it is case-sensitive ("dr" too).
		ps.p.ignoref(n.pos, n.args[0], "%s must be NAT, DR, TUN or FNAT, got", n.kw)
		return method{}, false
	}
	if len(n.args) == 1 {
		return m, true
	}
	if m.fwd != lvs.TUN {
		// keepalived reads the tunnel options after any method, and
		// refuses what is not one: "Invalid tunnel option".
		ps.p.warnf(n.pos, n.args[1], "tunnel options after %s %s ignored, from", n.kw, n.args[0])
		return m, true
	}
	bad := func(word, format string, args ...any) (method, bool) {
		ps.p.warnf(n.pos, word, format+"; the tunnel is ipip, as keepalived makes it:", args...)
		return method{fwd: lvs.TUN}, true
	}
	var t lvs.Tunnel
	for i := 1; i < len(n.args); i++ {
		switch w := n.args[i]; w {
		case "type", "port":
			if i+1 == len(n.args) {
				return bad(w, "missing value after")
			}
			i++
			if w == "type" {
				tt, ok := lvs.ParseTunnelType(n.args[i])
				if !ok {
					return bad(n.args[i], "unknown tunnel type (want ipip, gue or gre)")
				}
				t.Type = tt
				continue
			}
			v, err := strconv.ParseUint(n.args[i], 10, 16)
			if err != nil || v == 0 {
				return bad(n.args[i], "invalid gue tunnel port (1-65535)")
			}
			t.Port = uint16(v)
		case "nocsum":
			t.Flags = lvs.TunNoCsum
		case "csum":
			t.Flags = lvs.TunCsum
		case "remcsum":
			t.Flags = lvs.TunRemCsum
		default:
			return bad(w, "invalid tunnel option")
		}
	}
	if err := t.Check(); err != nil {
		return bad(strings.Join(n.args[1:], " "), "%v", err)
	}
	m.tun = t
	return m, true
}

// granularity reads persistence_granularity: an IPv4 netmask, which need
// not be contiguous (keepalived and ipvsadm take it as given), or an IPv6
// prefix length.
func (ps *parser) granularity(n *node, s string, vsAddr netip.Addr) (lvs.Netmask, bool) {
	if vsAddr.Is6() || (!vsAddr.IsValid() && !strings.Contains(s, ".")) {
		v, ok := parseInt(s)
		if !ok || v < 1 || v > 128 {
			ps.p.errorf(n.pos, s, "IPv6 persistence_granularity must be a prefix length in [1, 128], got")
			return 0, false
		}
		return lvs.Netmask(v), true
	}
	m, err := netip.ParseAddr(s)
	if err != nil || !m.Is4() {
		ps.p.errorf(n.pos, s, "IPv4 persistence_granularity must be a netmask, got")
		return 0, false
	}
	if m.IsUnspecified() {
		ps.p.errorf(n.pos, s, "persistence_granularity 0.0.0.0 (every client in one template) is not supported by xlb:")
		return 0, false
	}
	return lvs.Netmask4(m), true
}

func (ps *parser) realServer(b *node) *rsDraft {
	if !ps.needBlock(b) {
		return nil
	}
	if len(b.args) == 0 {
		ps.p.errorf(b.pos, b.kw, "missing address after")
		return nil
	}
	d := ps.newReal(b.pos)
	a, err := netip.ParseAddr(b.args[0])
	if err != nil {
		ps.p.errorf(b.pos, b.args[0], "real_server: not an IP address:")
		return nil
	}
	d.rs.Addr = a
	if len(b.args) > 1 {
		p, ok := ps.portArg(b, 1, 0)
		if !ok {
			return nil
		}
		d.rs.Port = p
	}
	if len(b.args) > 2 {
		ps.p.warnf(b.pos, b.args[2], "extra words after real_server address and port ignored, from")
	}
	rs := &d.rs
	for _, n := range b.children {
		if ps.inheritedKeyword(n, &d.inh, ctxRealServer) {
			continue
		}
		switch n.kw {
		case "weight":
			if v, ok := ps.one(n, 0, maxWeight); ok {
				d.weight.put(int(v))
			}
		case "lvs_method":
			if f, ok := ps.forwardArg(n); ok {
				d.forward.put(f)
			}
		case "uthreshold":
			if v, ok := ps.one(n, 0, math.MaxUint32); ok {
				rs.UThreshold = uint32(v)
			}
		case "lthreshold":
			if v, ok := ps.one(n, 0, math.MaxUint32); ok {
				rs.LThreshold = uint32(v)
			}
		case "notify_up":
			rs.NotifyUp = ps.scriptArg(n, true)
		case "notify_down":
			rs.NotifyDown = ps.scriptArg(n, true)
		case "smtp_alert":
			if b, ok := ps.optFlag(n); ok {
				d.smtpAlert.put(b)
			}
		case "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK":
			if c := ps.checker(n); c != nil {
				d.checkers = append(d.checkers, c)
			}
		case "SMTP_CHECK":
			if c := ps.checker(n); c != nil {
				d.checkers = append(d.checkers, smtpCheckers(c)...)
			}
		case "FILE_CHECK":
			if c := ps.fileCheck(n); c != nil {
				d.checkers = append(d.checkers, c)
			}
		case "BFD_CHECK":
			ps.bfdCheck(n, b)
		default:
			if strings.HasSuffix(n.kw, "_CHECK") && keepalivedKnows(ctxRealServer, n.kw) {
				ps.p.warnf(n.pos, n.kw, "checker not implemented by xlb, ignored (it will not take the real server down):")
				continue
			}
			ps.unknown(n, ctxRealServer)
		}
	}
	return d
}

var checkerKinds = map[string]CheckerKind{
	"TCP_CHECK": TCPCheck, "HTTP_GET": HTTPGet, "SSL_GET": SSLGet,
	"MISC_CHECK": MiscCheck, "DNS_CHECK": DNSCheck,
	"SMTP_CHECK": SMTPCheck, "UDP_CHECK": UDPCheck, "PING_CHECK": PingCheck,
}

// DNS query types DNS_CHECK knows.
var dnsTypes = []string{"A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"}

func (ps *parser) checker(b *node) *checkerDraft {
	if !ps.needBlock(b) {
		return nil
	}
	if len(b.args) > 0 {
		ps.p.warnf(b.pos, b.args[0], "extra words after %s ignored, from", b.kw)
	}
	kind := checkerKinds[b.kw]
	ctx := b.kw
	d := ps.newChecker(Checker{Kind: kind, Pos: b.pos})
	if kind == UDPCheck {
		d.c.MaxReplyLength = 255
	}
	c := &d.c
	http := kind == HTTPGet || kind == SSLGet
	for _, n := range b.children {
		if kind == SMTPCheck && (n.kw == "connect_timeout" || n.kw == "fwmark") {
			d.connSet = true // keepalived's test for a connection of the block's own
		}
		if ps.inheritedKeyword(n, &d.inh, ctx) {
			continue
		}
		switch {
		case kind != MiscCheck && ps.connKeyword(n, d):
			if kind == PingCheck && n.kw != "connect_ip" {
				ps.p.warnf(n.pos, n.kw, "PING_CHECK does not use it (keepalived neither: it pings from an unbound socket), ignored:")
			}
			d.connSet = true
		case kind == SMTPCheck && n.kw == "helo_name":
			if s, ok := ps.stringArg(n); ok {
				c.HeloName = s
			}
		case kind == SMTPCheck && n.kw == "host":
			if h := ps.smtpHost(n, d); h != nil {
				d.hosts = append(d.hosts, h)
			}
		case kind == UDPCheck && ps.udpKeyword(n, d):
		case http && n.kw == "url":
			d.hasURL = true
			if u, ok := ps.url(n); ok {
				c.URLs = append(c.URLs, u)
			}
		case http && n.kw == "http_protocol":
			if s, ok := ps.stringArg(n); ok {
				switch s {
				case "1.0", "1.0C", "1.1":
					c.HTTPProtocol = s
				case "1.0c":
					c.HTTPProtocol = "1.0C"
				default:
					ps.p.errorf(n.pos, s, "http_protocol must be 1.0, 1.0C or 1.1, got")
				}
			}
		case http && n.kw == "fast_recovery":
			c.FastRecovery = ps.flag(n)
		case http && n.kw == "enable_sni":
			c.EnableSNI = ps.flag(n)
		case kind == MiscCheck && n.kw == "misc_path":
			c.Misc = ps.scriptArg(n, false)
		case kind == MiscCheck && n.kw == "misc_timeout":
			if t, ok := ps.secondsArg(n, 0, math.MaxUint32/1_000_000); ok && t > 0 {
				d.miscTimeout.put(t)
			}
		case kind == MiscCheck && n.kw == "misc_dynamic":
			c.MiscDynamic = ps.flag(n)
		case kind == MiscCheck && n.kw == "user":
			if ps.args(n, 1, 2) {
				d.miscUser = n.args[0]
				d.miscGroup = ""
				if len(n.args) > 1 {
					d.miscGroup = n.args[1]
				}
			}
		case kind == DNSCheck && n.kw == "type":
			if s, ok := ps.stringArg(n); ok {
				if t := strings.ToUpper(s); slices.Contains(dnsTypes, t) {
					c.DNSType = t
				} else {
					ps.p.errorf(n.pos, s, "DNS_CHECK type must be one of %s, got", strings.Join(dnsTypes, " "))
				}
			}
		case kind == DNSCheck && n.kw == "name":
			if s, ok := ps.stringArg(n); ok {
				c.DNSName = s
			}
		default:
			ps.unknown(n, ctx)
		}
	}
	// keepalived: "HTTP/SSL_GET checker has no urls specified - ignoring",
	// "No script path has been specified for MISC_CHECKER - skipping".
	if http && !d.hasURL {
		ps.p.warn(Warning{File: b.pos.File, Line: b.pos.Line, Word: b.kw, Msg: "no url block in", Then: "checker ignored, as keepalived ignores it"})
		return nil
	}
	if kind == MiscCheck {
		if c.Misc == nil {
			ps.p.warn(Warning{File: b.pos.File, Line: b.pos.Line, Word: b.kw, Msg: "no misc_path in", Then: "checker ignored, as keepalived ignores it"})
			return nil
		}
		c.Misc.User, c.Misc.Group = d.miscUser, d.miscGroup
	}
	if kind == SMTPCheck && c.HeloName == "" {
		c.HeloName = defaultHeloName
	}
	if kind == UDPCheck && c.MinReplyLength > c.MaxReplyLength {
		ps.p.warnf(b.pos, b.kw, "min_reply_length %d > max_reply_length %d: every reply fails the pattern in", c.MinReplyLength, c.MaxReplyLength)
	}
	return d
}

func (ps *parser) url(b *node) (URL, bool) {
	var u URL
	if !ps.needBlock(b) {
		return u, false
	}
	ok := true
	var rx regexDraft
	for _, n := range b.children {
		switch n.kw {
		case "path":
			if s, good := ps.stringArg(n); good {
				u.Path = s
			}
		case "digest":
			if s, good := ps.stringArg(n); good {
				if len(s) != 32 || !isHexString(s) {
					ps.p.errorf(n.pos, s, "digest must be 32 hex digits (an MD5 sum), got")
					ok = false
				} else {
					u.Digest = strings.ToLower(s)
				}
			}
		case "status_code":
			if ps.args(n, 1, -1) {
				for _, a := range n.args {
					r, err := parseStatusRange(a)
					if err != nil {
						ps.p.errorf(n.pos, a, "status_code: %v:", err)
						ok = false
						continue
					}
					u.StatusCodes = append(u.StatusCodes, r)
				}
			}
		case "virtualhost":
			if s, good := ps.stringArg(n); good {
				u.Virtualhost = s
			}
		case "regex", "regex_no_match", "regex_options", "regex_min_offset", "regex_max_offset", "regex_stack":
			if !ps.regexKeyword(n, &rx) {
				ok = false
			}
		default:
			ps.unknown(n, ctxURL)
		}
	}
	if !ps.finishRegex(&rx, &u) {
		ok = false
	}
	if u.Path == "" {
		ps.p.errorf(b.pos, b.kw, "no path in")
		ok = false
	}
	if len(u.StatusCodes) == 0 {
		u.StatusCodes = []StatusRange{{200, 299}}
	}
	return u, ok
}

func isHexString(s string) bool {
	for i := 0; i < len(s); i++ {
		if cnum.HexDigit(s[i]) < 0 {
			return false
		}
	}
	return true
}

// parseStatusRange reads "200" or "200-299" (codes 100..599).
func parseStatusRange(s string) (StatusRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	min, ok1 := parseInt(lo)
	max, ok2 := parseInt(hi)
	switch {
	case !ok1 || !ok2 || !isDigits(lo) || !isDigits(hi):
		return StatusRange{}, errors.New("not a code or range of codes")
	case min < 100 || max > 599:
		return StatusRange{}, errors.New("codes must be in [100, 599]")
	case min > max:
		return StatusRange{}, errors.New("range runs backwards")
	}
	return StatusRange{min, max}, nil
}

// finishVirtualServers applies inheritance and keepalived's corrections
// (validate_check_config in keepalived's check_data.c).
func (ps *parser) finishVirtualServers() {
	type key struct {
		addr   netip.Addr
		port   uint16
		proto  lvs.Protocol
		fwmark uint32
	}
	seen := map[key]Pos{}
	for _, d := range ps.vss {
		vs := &d.vs
		w := func(format string, args ...any) { ps.p.warnf(vs.Pos, vs.word(), format, args...) }
		if len(d.rs) == 0 {
			w("virtual server has no real_server; ignoring")
			continue
		}
		if !ps.resolveEntries(d) {
			continue
		}
		byAddr := false // some service of vs is by address
		for _, e := range vs.Services() {
			byAddr = byAddr || e.FWMark == 0
		}
		vs.Protocol = d.protocol.or(0)
		if !byAddr {
			if d.protocol.set {
				w("protocol specified for fwmark - protocol will be ignored for")
			}
			vs.Protocol = 0
		} else if vs.Protocol == 0 {
			// The kernel takes protocol 0 as UDP; keepalived says so.
			w("no protocol set, defaulting to UDP for")
			vs.Protocol = lvs.UDP
		}
		vs.Scheduler = d.scheduler.or("")
		if vs.Scheduler == "" {
			w("no lvs_sched set, defaulting to wlc for")
			vs.Scheduler = "wlc"
		}
		for _, n := range d.flagWords {
			switch {
			case n.kw == "ops":
				if vs.Protocol != lvs.UDP {
					ps.p.warnf(n.pos, n.kw, "one-packet scheduling needs UDP; ignoring")
					continue
				}
				vs.SchedFlags |= lvs.OnePacket
			case n.kw == "sloppy_tcp" || n.kw == "sloppy_sctp":
				// xlb's own keywords: IPVS's sysctls of those names,
				// for this service.
				want := map[string]lvs.Protocol{"sloppy_tcp": lvs.TCP, "sloppy_sctp": lvs.SCTP}[n.kw]
				if vs.Protocol != want {
					ps.p.warnf(n.pos, n.kw, "only applies to %s services, not %s; ignoring", want, vs.Protocol)
					continue
				}
				vs.Sloppy = true
			default:
				bit, owner, _ := sched.FlagByName(n.kw)
				if owner != vs.Scheduler {
					ps.p.warnf(n.pos, n.kw, "only applies to the %s scheduler, not %s; ignoring", owner, vs.Scheduler)
					continue
				}
				vs.SchedFlags |= bit
			}
		}
		vm := d.forward.or(method{fwd: lvs.NAT})
		vs.Forward, vs.Tunnel = vm.fwd, vm.tun
		if !d.forward.set {
			w("no lvs_method set, defaulting to NAT for")
		}
		vs.PersistenceTimeout = d.persistence.or(0)
		if d.granularity.set && vs.PersistenceTimeout == 0 {
			vs.PersistenceTimeout = defaultPersistenceTimeout
		}
		if vs.PersistenceTimeout == 0 {
			for _, e := range vs.Services() {
				if e.FWMark == 0 && e.Port == 0 {
					w("port 0 is only valid for a persistent service; setting persistence_timeout %v for", defaultPersistenceTimeout)
					vs.PersistenceTimeout = defaultPersistenceTimeout
					break
				}
			}
		}
		vs.PersistenceGranularity = d.granularity.or(lvs.FullNetmask(vs.Addr))
		vs.DelayLoop = d.inh.delayLoop.or(defaultDelayLoop)
		vs.Alpha = d.inh.alpha.or(false)
		vs.InhibitOnFailure = d.inh.inhibit.or(false)
		g := &ps.cfg.Global
		vs.SMTPAlert = smtpAlert(d.smtpAlert, g.SMTPAlertChecker, g.SMTPAlert, false)
		vs.CheckViaVIP = d.checkViaVIP.or(g.CheckViaVIP)
		ps.resolveLocalAddrs(d)
		if vs.Quorum == 0 {
			vs.Quorum = 1
		}

		dup := false
		for _, e := range vs.Services() {
			k := key{addr: e.Addr, port: e.Port, proto: vs.Protocol}
			what := fmt.Sprintf("virtual_server %s port %d %s", e.Addr, e.Port, vs.Protocol)
			if e.FWMark != 0 {
				k = key{addr: e.Addr, fwmark: e.FWMark}
				what = fmt.Sprintf("virtual_server fwmark %d (IPv%d)", e.FWMark, e.Family)
			}
			if first, ok := seen[k]; ok {
				// keepalived adds both to IPVS, which refuses the second.
				ps.p.warn(Warning{File: vs.Pos.File, Line: vs.Pos.Line, Word: vs.word(), Msg: fmt.Sprintf("%s is already defined at %s:", what, first),
					Then: "ignoring this virtual_server, as the kernel refuses the second IPVS service keepalived adds"})
				dup = true
				break
			}
			seen[k] = vs.Pos
		}
		if dup {
			continue
		}

		var weightSum uint64
		// A real is a duplicate of one kept before at its address and
		// port: scanned for in vs.Reals, or, in a big virtual server,
		// looked up in kept (a scan per real is quadratic).
		var kept map[netip.AddrPort]bool
		if len(d.rs) > 64 {
			kept = make(map[netip.AddrPort]bool, len(d.rs))
		}
		// The reals kept are moved down in d.rs, which becomes vs.Reals.
		vs.Reals = d.rs[:0]
		for i := range d.rs {
			rs := &d.rs[i]
			dup := false
			if kept != nil {
				dup = kept[netip.AddrPortFrom(rs.Addr, rs.Port)]
			} else {
				for _, o := range vs.Reals {
					if o.Addr == rs.Addr && o.Port == rs.Port {
						dup = true
					}
				}
			}
			if dup {
				ps.p.warnf(rs.Pos, rs.Addr.String(), "real_server duplicated in the same virtual_server; ignoring the second")
				continue
			}
			// Its method, weight, alpha and inhibit_on_failure are
			// resolveReals'. Not from the virtual server's: keepalived's
			// real servers inherit only the globals.
			rs.SMTPAlert = smtpAlert(d.rsLater[i].smtpAlert, g.SMTPAlertChecker, g.SMTPAlert, true)
			rs.Port = ps.serverPort(vs, rs.Pos, rs.Addr, rs.Forward, rs.Port, "real_server")
			for j, fromReal := range d.rsLater[i].portFromReal {
				if fromReal {
					rs.Checkers[j].ConnectPort = rs.Port
				}
			}
			weightSum += uint64(rs.Weight)
			vs.Reals = append(vs.Reals, *rs)
			if kept != nil {
				kept[netip.AddrPortFrom(rs.Addr, rs.Port)] = true
			}
		}
		clear(d.rs[len(vs.Reals):]) // the duplicates' leftovers
		d.rs, d.rsLater = nil, nil

		if ss := vs.SorryServer; ss != nil {
			sm := d.sorryFwd.or(method{vs.Forward, vs.Tunnel})
			ss.Forward, ss.Tunnel = sm.fwd, sm.tun
			ss.Port = ps.serverPort(vs, d.sorryPos, ss.Addr, ss.Forward, ss.Port, "sorry_server")
			if ss.Addr.Is4() != vs.Addr.Is4() && ss.Forward != lvs.TUN {
				ps.p.warnf(d.sorryPos, ss.Addr.String(), "sorry_server address family differs from the virtual server's; ignoring")
				vs.SorryServer = nil
			}
		}
		for i := len(vs.Reals) - 1; i >= 0; i-- {
			rs := vs.Reals[i]
			// A tunnel crosses families, and FULLNAT (DPVS's NAT64: an
			// IPv6 VIP, IPv4 reals; the data planes say what they do).
			if rs.Addr.Is4() != vs.Addr.Is4() && rs.Forward != lvs.TUN && rs.Forward != lvs.FNAT {
				ps.p.warnf(rs.Pos, rs.Addr.String(), "real_server address family differs from the virtual server's; ignoring")
				weightSum -= uint64(rs.Weight)
				vs.Reals = slices.Delete(vs.Reals, i, i+1)
			}
		}

		vs.TOA = d.toa.or(false)
		if vs.TOA && (vs.Protocol != lvs.TCP || !slices.ContainsFunc(vs.Reals, func(r RealServer) bool { return r.Forward == lvs.FNAT })) {
			ps.p.warnf(d.toaPos, "toa", "a TCP option of FULLNAT connections, and this virtual server has no FNAT real or is not TCP; not used:")
			vs.TOA = false
		}
		if len(vs.LocalAddrs) > 0 && !slices.ContainsFunc(vs.Reals, func(r RealServer) bool { return r.Forward == lvs.FNAT }) {
			ps.p.warnf(d.laddrGroupPos, "laddr_group_name", "local addresses are for FNAT reals, and this virtual server has none; not used:")
			vs.LocalAddrGroup, vs.LocalAddrs = "", nil
		}
		if uint64(vs.Quorum) > weightSum {
			w("quorum %d exceeds the total weight %d of the real servers; using %d for", vs.Quorum, weightSum, weightSum)
			vs.Quorum = uint32(weightSum)
		}
		if vs.Quorum > 0 && vs.Hysteresis >= vs.Quorum {
			w("hysteresis %d must be below quorum %d; using %d for", vs.Hysteresis, vs.Quorum, vs.Quorum-1)
			vs.Hysteresis = vs.Quorum - 1
		} else if vs.Quorum == 0 {
			vs.Hysteresis = 0
		}
		if ps.cfg.VirtualServers == nil {
			ps.cfg.VirtualServers = make([]VirtualServer, 0, len(ps.vss))
		}
		ps.cfg.VirtualServers = append(ps.cfg.VirtualServers, *vs)
	}
}

// serverPort is the port of a real or sorry server of vs. IPVS uses the
// service port except with NAT; keepalived fills in a missing port and
// corrects a different one. A group or fwmark stands for several ports: a
// server without a port keeps 0 (the packet's own port), and the director
// gives a DR or TUN real each service's port.
func (ps *parser) serverPort(vs *VirtualServer, pos Pos, addr netip.Addr, fwd lvs.Forward, port uint16, what string) uint16 {
	switch {
	case vs.Group != "" || vs.FWMark != 0:
		return port
	case port == 0:
		return vs.Port
	case !fwd.Translates() && port != vs.Port:
		ps.p.warnf(pos, addr.String(), "only NAT can change the port; using port %d for %s", vs.Port, what)
		return vs.Port
	}
	return port
}

// newChecker returns a draft of the checker c: a spare one if there is.
// A draft lives only while its virtual server is read (resolveCheckers
// takes it back), so that a file's checkers reuse a virtual server's
// worth of drafts (700 bytes each).
func (ps *parser) newChecker(c Checker) *checkerDraft {
	k := len(ps.spareCheckers)
	if k == 0 {
		return &checkerDraft{c: c}
	}
	d := ps.spareCheckers[k-1]
	ps.spareCheckers = ps.spareCheckers[:k-1]
	*d = checkerDraft{c: c}
	return d
}

// newReal returns a draft of the real_server at pos: a spare one if
// there is (see newChecker).
func (ps *parser) newReal(pos Pos) *rsDraft {
	k := len(ps.spareReals)
	if k == 0 {
		return &rsDraft{rs: RealServer{Pos: pos}}
	}
	d := ps.spareReals[k-1]
	ps.spareReals = ps.spareReals[:k-1]
	*d = rsDraft{rs: RealServer{Pos: pos}}
	return d
}

// resolveReals resolves vd's reals and their checkers once vd is read:
// all they inherit from it is known then. They become vd.rs, one array
// (their checkers another), and their drafts are taken back for the
// next virtual server's. What the end of the file settles (the globals'
// smtp_alert, a port only NAT may change) waits in vd.rsLater.
func (ps *parser) resolveReals(vd *vsDraft) {
	if len(vd.reals) == 0 {
		return
	}
	// As finishVirtualServers sets the virtual server's.
	vm := vd.forward.or(method{fwd: lvs.NAT})
	vsAlpha := vd.inh.alpha.or(false)
	vsInhibit := vd.inh.inhibit.or(false)
	vsDelayLoop := vd.inh.delayLoop.or(defaultDelayLoop)
	nc := 0
	for _, rd := range vd.reals {
		nc += len(rd.checkers)
	}
	checkers := make([]Checker, nc)
	portFromReal := make([]bool, nc)
	vd.rs = make([]RealServer, len(vd.reals))
	vd.rsLater = make([]realLater, len(vd.reals))
	for i, rd := range vd.reals {
		rs := &rd.rs
		rm := rd.forward.or(vm)
		rs.Forward, rs.Tunnel = rm.fwd, rm.tun
		rs.Weight = rd.weight.or(vd.weight.or(1))
		rs.Alpha = rd.inh.alpha.or(vsAlpha)
		rs.InhibitOnFailure = rd.inh.inhibit.or(vsInhibit)
		later := realLater{smtpAlert: rd.smtpAlert}
		if n := len(rd.checkers); n > 0 {
			rs.Checkers, checkers = checkers[:n:n], checkers[n:]
			later.portFromReal, portFromReal = portFromReal[:n:n], portFromReal[n:]
			for j, cd := range rd.checkers {
				rs.Checkers[j], later.portFromReal[j] = resolveChecker(cd, rd, vd, rs.Alpha, vsDelayLoop)
			}
			ps.spareCheckers = append(ps.spareCheckers, rd.checkers...)
		}
		vd.rs[i], vd.rsLater[i] = *rs, later
	}
	ps.spareReals = append(ps.spareReals, vd.reals...)
	vd.reals = nil
}

// resolveChecker fills a checker's unset settings from its real server,
// then its virtual server, then keepalived's default for the checker kind:
// all but ConnectPort when it is the real's (fromReal). rsAlpha and
// vsDelayLoop are the real's alpha and the virtual server's delay_loop.
func resolveChecker(cd *checkerDraft, rd *rsDraft, vd *vsDraft, rsAlpha bool, vsDelayLoop time.Duration) (c Checker, fromReal bool) {
	c = cd.c
	rs := &rd.rs
	if c.Kind == FileCheck {
		return c, false // none of the timing applies: keepalived acts on the file's changes
	}
	pick := func(c, r, v opt[time.Duration]) opt[time.Duration] {
		if c.set {
			return c
		}
		if r.set {
			return r
		}
		return v
	}
	c.DelayLoop = pick(cd.inh.delayLoop, rd.inh.delayLoop, vd.inh.delayLoop).or(defaultDelayLoop)
	c.ConnectTimeout = pick(cd.inh.connectTimeout, rd.inh.connectTimeout, vd.inh.connectTimeout).or(defaultConnectTimeout)
	c.Warmup = pick(cd.inh.warmup, rd.inh.warmup, vd.inh.warmup).or(c.DelayLoop)

	defaultRetry, defaultDelay := 1, time.Second
	switch c.Kind {
	case HTTPGet, SSLGet:
		defaultDelay = 3 * time.Second
	case MiscCheck:
		defaultRetry = 0
	case DNSCheck:
		defaultRetry, defaultDelay = 3, c.DelayLoop
	}
	c.Retry = cd.inh.retry.or(rd.inh.retry.or(vd.inh.retry.or(defaultRetry)))
	c.DelayBeforeRetry = pick(cd.inh.delayBeforeRetry, rd.inh.delayBeforeRetry, vd.inh.delayBeforeRetry).or(defaultDelay)
	c.Alpha = cd.inh.alpha.or(rsAlpha)

	if c.Kind == MiscCheck {
		c.MiscTimeout = cd.miscTimeout.or(vsDelayLoop)
		c.ConnectTimeout = 0
		return c, false
	}
	c.ConnectIP = cd.connectIP.or(rs.Addr)
	c.ConnectPort, fromReal = cd.connectPort.v, !cd.connectPort.set
	if c.Kind == HTTPGet || c.Kind == SSLGet {
		if c.HTTPProtocol == "" {
			c.HTTPProtocol = "1.0"
		}
		host := cd.inh.virtualhost.or(rd.inh.virtualhost.or(vd.inh.virtualhost.or("")))
		for i := range c.URLs {
			if c.URLs[i].Virtualhost == "" {
				c.URLs[i].Virtualhost = host
			}
		}
	}
	if c.Kind == DNSCheck {
		if c.DNSType == "" {
			c.DNSType = "SOA"
		}
		if c.DNSName == "" {
			c.DNSName = "."
		}
	}
	return c, fromReal
}
