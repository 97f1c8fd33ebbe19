package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Parse reads the keepalived.conf at path, and the files it includes.
//
// On success the Config holds every supported setting with defaults and
// inheritance applied, and Config.Warnings what xlb ignored or corrected.
// Otherwise the error is an ErrorList of every problem found, each naming
// file:line and the offending word; only a path that cannot be read at all
// gives a plain error wrapping the os error.
func Parse(path string) (*Config, error) {
	return ParseWith(path, Options{})
}

// Limits are how many virtual and real servers the data plane holds: a
// configuration with more is refused while it is read, before it has
// cost memory in proportion to its size. Zero is no limit.
type Limits struct {
	// VirtualServers, and the flag that sets it, for the message.
	VirtualServers int
	VirtualFlag    string
	// RealServers counts real_server blocks over all virtual servers.
	RealServers int
	RealFlag    string
	// Holder names the data plane: "the XDP data plane".
	Holder string
}

// Options are how a configuration is read.
type Options struct {
	Limits
	// ConfigID is keepalived's config id (its -i option): a line
	// "@ID ..." is read only with this id, "@^ID ..." only without it.
	// Empty: keepalived's default, the host name up to its first dot.
	ConfigID string
	// Strict makes every warning an error (xlb check/run --strict).
	Strict bool
}

// DefaultConfigID is the config id keepalived uses without -i: the host
// name up to its first dot.
func DefaultConfigID() string {
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(h, ".")
	return h
}

// ParseWith is Parse with options.
func ParseWith(path string, o Options) (*Config, error) {
	text, err := osSource{}.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keepalived config: %w", err)
	}
	return parseText(osSource{}, filepath.Clean(path), text, o)
}

// ParseBytes parses data as the keepalived.conf called name. name is used in
// messages, and relative includes are resolved against its directory on the
// local file system.
func ParseBytes(name string, data []byte) (*Config, error) {
	return parse(osSource{}, filepath.Clean(name), data, Options{})
}

// maxErrors stops a hopeless file from producing a flood of errors: the
// parse stops there. maxWarnings bounds the warnings kept likewise.
const (
	maxErrors   = 100
	maxWarnings = 1000
)

// problems collects the errors and warnings of one parse.
type problems struct {
	errs  ErrorList
	warns []Warning
	// all is both, in the order found, warnings as errors: what
	// --strict reports.
	all  ErrorList
	stop bool // the input is hopeless: read no more of it
	// held, when set, keeps the problems instead (see holding).
	held *heldProblems
}

// heldProblems are problems found before they can be reported: the
// parser reads each top-level block as soon as the lexer has read it,
// but what it finds is reported after all the lexer finds, as when the
// whole file was read first.
type heldProblems struct {
	list          []heldProblem
	nerrs, nwarns int // found, kept or not
}

type heldProblem struct {
	err  *ParseError // or
	warn Warning
}

// holding returns a problems that keeps what it is told, for release to
// report.
func holding() *problems {
	return &problems{held: &heldProblems{}}
}

// keep keeps what release can report: the first maxErrors+maxWarnings
// problems (all that all takes), the first maxErrors errors (errs) and
// the first maxWarnings+1 warnings (warns, then its last line). Beyond
// those, none would be reported.
func (h *heldProblems) keep(hp heldProblem) {
	isErr := hp.err != nil
	keep := len(h.list) < maxErrors+maxWarnings ||
		(isErr && h.nerrs < maxErrors) || (!isErr && h.nwarns <= maxWarnings)
	if isErr {
		h.nerrs++
	} else {
		h.nwarns++
	}
	if keep {
		h.list = append(h.list, hp)
	}
}

// release reports to p, in order, what held kept.
func (p *problems) release(held *problems) {
	for _, hp := range held.held.list {
		if hp.err != nil {
			p.add(hp.err)
		} else {
			p.warn(hp.warn)
		}
	}
	held.held = nil
}

func (p *problems) add(e *ParseError) {
	if p.held != nil {
		p.held.keep(heldProblem{err: e})
		return
	}
	if len(p.all) < maxErrors+maxWarnings {
		p.all = append(p.all, e)
	}
	switch {
	case len(p.errs) < maxErrors-1:
		p.errs = append(p.errs, e)
	case len(p.errs) == maxErrors-1:
		p.errs = append(p.errs, e, &ParseError{File: e.File, Line: e.Line, Msg: fmt.Sprintf("%d errors: stopped reading here", maxErrors)})
	}
}

// full says the parse has found enough to stop.
func (p *problems) full() bool { return p.stop || len(p.errs) >= maxErrors }

// errorf records an error about word; the message should read well
// followed by the quoted word.
func (p *problems) errorf(pos Pos, word, format string, args ...any) {
	p.add(&ParseError{File: pos.File, Line: pos.Line, Word: word, Msg: fmt.Sprintf(format, args...)})
}

// warnf records a warning about something keepalived would do the same
// way (log it, and ignore or correct it).
func (p *problems) warnf(pos Pos, word, format string, args ...any) {
	p.warn(Warning{File: pos.File, Line: pos.Line, Word: word, Msg: fmt.Sprintf(format, args...)})
}

// unlikef records a warning about something keepalived acts on and xlb
// does not: xlb will behave differently from keepalived.
func (p *problems) unlikef(pos Pos, word, format string, args ...any) {
	p.warn(Warning{File: pos.File, Line: pos.Line, Word: word, Msg: fmt.Sprintf(format, args...), Unlike: true})
}

// ignoref records a value keepalived reports and ignores, leaving the
// setting as it was (its default): so does xlb, with a warning.
func (p *problems) ignoref(pos Pos, word, format string, args ...any) {
	p.warn(Warning{File: pos.File, Line: pos.Line, Word: word, Msg: fmt.Sprintf(format, args...), Then: "ignored, as keepalived ignores it"})
}

func (p *problems) warn(w Warning) {
	if p.held != nil {
		p.held.keep(heldProblem{warn: w})
		return
	}
	if len(p.all) < maxErrors+maxWarnings {
		p.all = append(p.all, w.strict())
	}
	switch {
	case len(p.warns) < maxWarnings:
		p.warns = append(p.warns, w)
	case len(p.warns) == maxWarnings:
		p.warns = append(p.warns, Warning{File: w.File, Line: w.Line, Msg: fmt.Sprintf("more than %d warnings: no more are kept", maxWarnings)})
	}
}

// node is a keyword line with its block, if it has one. A node, its
// words and its children are the tree builder's, taken back once its
// top-level block has been read: the parser keeps copies, never a node
// or a slice of one.
type node struct {
	line
	kw       string
	args     []string
	block    bool
	children []*node
	anon     bool // a block with no keyword line: reported, then ignored
}

// treeBuilder nests the logical lines by their braces as the lexer reads
// them, and hands each top-level line, with its block, to top once it is
// whole: the tree of a big file is never held all at once, and each
// top-level block's nodes, words and children reuse the memory of the
// block before. The lexer has already balanced the braces of each file.
type treeBuilder struct {
	top   func(*node)
	stack []openBlock // the open blocks, the top level (nil) first
	prev  *node       // the words line just before, if it was the last line
	// last is the top-level line read last: its block may follow.
	last *node
	// kids are the children of the open blocks, each block's from its
	// openBlock.kids on, until it closes.
	kids []*node
	// anon are the blocks with no keyword, reported once the whole file
	// is read (after the lexer's problems).
	anon []Pos

	nodes    arena[node]
	words    arena[string]
	children arena[*node]
}

type openBlock struct {
	n    *node
	kids int // where its children start in treeBuilder.kids
}

func newTreeBuilder(top func(*node)) *treeBuilder {
	return &treeBuilder{top: top, stack: []openBlock{{}}}
}

func (t *treeBuilder) node(n node) *node {
	p := &t.nodes.alloc(1)[0]
	*p = n
	return p
}

// child adds n to the block open last.
func (t *treeBuilder) child(n *node) {
	if len(t.stack) > 1 {
		t.kids = append(t.kids, n)
	} else {
		t.last = n
	}
}

// flush hands over the last top-level line, whose block is whole, and
// takes back the memory of its tree.
func (t *treeBuilder) flush() {
	if t.last == nil {
		return
	}
	t.top(t.last)
	t.last, t.prev = nil, nil
	t.nodes.reset()
	t.words.reset()
	t.children.reset()
}

func (t *treeBuilder) add(l line) {
	topLevel := len(t.stack) == 1
	switch l.brace {
	case '{':
		if t.prev == nil || t.prev.block {
			if topLevel {
				t.flush()
			}
			if len(t.anon) < maxErrors+maxWarnings { // what p.all can take
				t.anon = append(t.anon, l.pos)
			}
			// Keep the block so its braces pair up, but ignore it.
			t.prev = t.node(node{line: l, anon: true})
			t.child(t.prev)
		}
		t.prev.block = true
		t.stack = append(t.stack, openBlock{t.prev, len(t.kids)})
		t.prev = nil
	case '}':
		if len(t.stack) > 1 {
			t.close()
		}
		t.prev = nil
	default:
		if topLevel {
			t.flush()
		}
		// The lexer's words are its own: copied.
		l.words = append(t.words.alloc(len(l.words))[:0], l.words...)
		n := t.node(node{line: l, kw: l.words[0], args: l.words[1:]})
		t.child(n)
		t.prev = n
	}
}

// close closes the block open last, which takes its children.
func (t *treeBuilder) close() {
	b := t.stack[len(t.stack)-1]
	t.stack = t.stack[:len(t.stack)-1]
	if kids := t.kids[b.kids:]; len(kids) > 0 {
		b.n.children = append(t.children.alloc(len(kids))[:0], kids...)
	}
	clear(t.kids[b.kids:])
	t.kids = t.kids[:b.kids]
}

// finish hands over the last top-level line, and reports the blocks with
// no keyword to p.
func (t *treeBuilder) finish(p *problems) {
	for len(t.stack) > 1 {
		t.close() // the lexer closes every block: never
	}
	t.flush()
	for _, pos := range t.anon {
		p.errorf(pos, "{", "block with no keyword:")
	}
}

// arena hands out slices of T from chunks, all taken back at once by
// reset.
type arena[T any] struct {
	cur   []T   // the chunk being handed out
	used  [][]T // the chunks handed out before it
	spare [][]T // the chunks taken back
}

// arenaChunk is how many values a chunk holds.
const arenaChunk = 512

// alloc returns n zero values, cap n.
func (a *arena[T]) alloc(n int) []T {
	if n > arenaChunk {
		return make([]T, n) // rare (a block of hundreds of lines, a line of hundreds of words): not kept
	}
	if cap(a.cur)-len(a.cur) < n {
		if a.cur != nil {
			a.used = append(a.used, a.cur)
		}
		if k := len(a.spare); k > 0 {
			a.cur, a.spare = a.spare[k-1], a.spare[:k-1]
		} else {
			a.cur = make([]T, 0, arenaChunk)
		}
	}
	i := len(a.cur)
	a.cur = a.cur[:i+n]
	return a.cur[i : i+n : i+n]
}

// reset takes back every chunk, zeroed: nothing handed out is used after.
func (a *arena[T]) reset() {
	if a.cur == nil {
		return
	}
	for _, c := range append(a.used, a.cur) {
		clear(c)
		a.spare = append(a.spare, c[:0])
	}
	a.cur, a.used = nil, a.used[:0]
}

func parse(src source, name string, data []byte, o Options) (*Config, error) {
	return parseText(src, name, string(data), o)
}

func parseText(src source, name, text string, o Options) (*Config, error) {
	cfg, p := parseProblems(src, name, text, o)
	if o.Strict && len(p.warns) > 0 {
		return nil, p.all
	}
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return cfg, nil
}

// parseProblems parses, returning what was read (nil if the file was
// hopeless) and every problem found.
func parseProblems(src source, name, text string, o Options) (*Config, *problems) {
	p := &problems{}
	if o.ConfigID == "" {
		o.ConfigID = DefaultConfigID()
	}
	// The parser reads each top-level block as the lexer hands it over;
	// what it finds is held until the lexer has found all it finds.
	ps := &parser{p: holding(), cfg: &Config{Global: defaultGlobal()}}
	lx := &lexer{src: src, p: p, lim: o.Limits, configID: o.ConfigID, tree: newTreeBuilder(ps.top)}
	lx.lexFile(name, text)
	if p.full() {
		return nil, p
	}
	lx.tree.finish(p)
	p.release(ps.p)
	ps.p = p
	ps.finish()
	ps.cfg.Warnings = p.warns
	return ps.cfg, p
}

func defaultGlobal() GlobalDefs {
	return GlobalDefs{
		SMTPPort:                    25,
		SMTPConnectTimeout:          30 * time.Second,
		VRRPVersion:                 2,
		VRRPGarpMasterDelay:         5 * time.Second,
		VRRPGarpMasterRefreshRepeat: 1,
		VRRPGarpMasterRepeat:        5,
		VRRPMcastGroup4:             netip.MustParseAddr("224.0.0.18"),
		VRRPMcastGroup6:             netip.MustParseAddr("ff02::12"),
	}
}

// parser turns the node tree into a Config.
type parser struct {
	p   *problems
	cfg *Config

	instances   []*instanceDraft
	syncGroups  []*syncGroupDraft
	vss         []*vsDraft
	seenGlobals bool
	// groups are the virtual_server_group blocks by name;
	// groupServices counts the services they expand to.
	groups        map[string]*vsGroup
	groupServices int
	// laddrGroups are the local_address_group blocks (FULLNAT's local
	// addresses, keepalived-DPVS's) by name.
	laddrGroups map[string]*laddrGroup
	// spareCheckers and spareReals are drafts taken back once resolved,
	// for the next ones (see newChecker).
	spareCheckers []*checkerDraft
	spareReals    []*rsDraft
}

// Contexts, for the table of keywords keepalived knows (keywords.go).
const (
	ctxTop           = "top"
	ctxGlobal        = "global_defs"
	ctxScript        = "vrrp_script"
	ctxTrackFile     = "track_file"
	ctxInstance      = "vrrp_instance"
	ctxAuth          = "authentication"
	ctxSyncGroup     = "vrrp_sync_group"
	ctxVirtualServer = "virtual_server"
	ctxRealServer    = "real_server"
	ctxURL           = "url"
	ctxTCPCheck      = "TCP_CHECK"
	ctxHTTPGet       = "HTTP_GET"
	ctxSSLGet        = "SSL_GET"
	ctxMiscCheck     = "MISC_CHECK"
	ctxDNSCheck      = "DNS_CHECK"
)

// unknown handles a keyword that the context's switch does not implement.
// keepalived logs a keyword it does not know ("Unknown keyword") and goes
// on without it and its block; xlb warns the same way, suggesting the
// keyword the word is closest to. A keyword keepalived knows but xlb does
// not implement is a warning that xlb differs.
func (ps *parser) unknown(n *node, ctx string) {
	if n.anon {
		return // already reported
	}
	if keepalivedKnows(ctx, n.kw) {
		what := "keyword"
		if n.block {
			what = "block"
		}
		ps.p.unlikef(n.pos, n.kw, "keepalived %s not implemented by xlb, ignored:", what)
		return
	}
	if includeKeywords[n.kw] {
		ps.p.errorf(n.pos, n.kw, "include takes exactly one file name (a glob):")
		return
	}
	then := "ignored, as keepalived ignores it"
	if strings.ContainsFunc(n.kw, func(r rune) bool { return r == 0xa0 || r == 0x85 || r == 0xfeff }) {
		then += " (it holds a no-break space or another non-ASCII blank, which keepalived reads as part of the word)"
	} else if s := suggestKeyword(ctx, n.kw); s != "" {
		then += fmt.Sprintf(" (did you mean %q?)", s)
	}
	msg := fmt.Sprintf("unknown keyword in %s:", ctx)
	if ctx == ctxTop {
		msg = "unknown top-level keyword"
	}
	ps.p.warn(Warning{File: n.pos.File, Line: n.pos.Line, Word: n.kw, Msg: msg, Then: then})
}

// top reads a top-level line and its block.
func (ps *parser) top(n *node) {
	switch n.kw {
	case "global_defs":
		if ps.needBlock(n) {
			if !ps.seenGlobals {
				ps.cfg.Global.Pos = n.pos
				ps.seenGlobals = true
			}
			ps.global(n)
		}
	case "vrrp_script":
		ps.vrrpScript(n)
	case "track_file", "vrrp_track_file":
		ps.trackFile(n)
	case "vrrp_instance":
		ps.vrrpInstance(n)
	case "vrrp_sync_group":
		ps.syncGroup(n)
	case "virtual_server":
		ps.virtualServer(n)
	case "virtual_server_group":
		ps.virtualServerGroup(n)
	case "local_address_group":
		ps.localAddressGroup(n)
	case "real_server":
		ps.p.errorf(n.pos, n.kw, "outside a virtual_server:")
	default:
		ps.unknown(n, ctxTop)
	}
}

func (ps *parser) finish() {
	ps.finishInstances()
	ps.finishSyncGroups()
	ps.finishLVSSyncDaemon()
	ps.finishVirtualServers()
}

func (ps *parser) global(b *node) {
	g := &ps.cfg.Global
	for _, n := range b.children {
		switch n.kw {
		case "router_id":
			if s, ok := ps.stringArg(n); ok {
				g.RouterID = s
			}
		case "notification_email":
			if ps.needBlock(n) {
				for _, e := range n.children {
					if ps.valueLine(e) {
						g.NotificationEmail = append(g.NotificationEmail, e.words...)
					}
				}
			}
		case "notification_email_from":
			if s, ok := ps.stringArg(n); ok {
				g.NotificationEmailFrom = s
			}
		case "smtp_server":
			if ps.args(n, 1, 2) {
				g.SMTPServer = n.args[0]
				if len(n.args) == 2 {
					if p, ok := ps.portArg(n, 1, 1); ok {
						g.SMTPPort = p
					}
				}
			}
		case "smtp_connect_timeout":
			if v, ok := ps.uintArg(n, 0, 1, 1<<31-1); ok {
				g.SMTPConnectTimeout = time.Duration(v) * time.Second
			}
		case "smtp_helo_name":
			// keepalived passes over a smtp_helo_name without a name.
			if !ps.args(n, 0, 1) {
				continue
			}
			if len(n.args) == 0 {
				ps.p.ignoref(n.pos, n.kw, "missing name after")
				continue
			}
			g.SMTPHeloName = n.args[0]
		case "smtp_alert":
			if b, ok := ps.optFlag(n); ok {
				g.SMTPAlert = &b
			}
		case "smtp_alert_vrrp":
			if b, ok := ps.optFlag(n); ok {
				g.SMTPAlertVRRP = &b
			}
		case "smtp_alert_checker":
			if b, ok := ps.optFlag(n); ok {
				g.SMTPAlertChecker = &b
			}
		case "no_email_faults":
			if !ps.leaf(n) {
				continue
			}
			if len(n.args) > 0 {
				ps.p.warn(Warning{File: n.pos.File, Line: n.pos.Line, Word: n.args[0], Msg: "no_email_faults takes no value, got",
					Then: "read as on, as keepalived reads it"})
			}
			g.NoEmailFaults = true
		case "no_checker_emails":
			if b, ok := ps.optFlag(n); ok {
				g.NoCheckerEmails = b
			}
		case "vrrp_version":
			if v, ok := ps.uintArg(n, 0, 2, 3); ok {
				g.VRRPVersion = int(v)
			}
		case "vrrp_garp_master_delay":
			if v, ok := ps.uintArg(n, 0, 0, 1<<31-1); ok {
				g.VRRPGarpMasterDelay = time.Duration(v) * time.Second
			}
		case "vrrp_garp_master_repeat":
			if v, ok := ps.uintArg(n, 0, 0, 1<<31-1); ok {
				g.VRRPGarpMasterRepeat = ps.atLeastOne(n, int(v))
			}
		case "vrrp_garp_master_refresh":
			if v, ok := ps.uintArg(n, 0, 0, 1<<31-1); ok {
				g.VRRPGarpMasterRefresh = time.Duration(v) * time.Second
			}
		case "vrrp_garp_master_refresh_repeat":
			if v, ok := ps.uintArg(n, 0, 0, 1<<31-1); ok {
				g.VRRPGarpMasterRefreshRepeat = ps.atLeastOne(n, int(v))
			}
		case "vrrp_strict":
			g.VRRPStrict = ps.flag(n)
		case "check_via_vip":
			g.CheckViaVIP = ps.flag(n)
		case "vrrp_check_unicast_src":
			g.VRRPCheckUnicastSrc = ps.flag(n)
		case "vrrp_skip_check_adv_addr":
			g.VRRPSkipCheckAdvAddr = ps.flag(n)
		case "enable_script_security":
			g.EnableScriptSecurity = ps.flag(n)
		case "script_user":
			if ps.args(n, 1, 2) {
				g.ScriptUser = n.args[0]
				if len(n.args) == 2 {
					g.ScriptGroup = n.args[1]
				}
			}
		case "vrrp_mcast_group4":
			if a, ok := ps.addrArg(n, 0); ok {
				if !a.Is4() || !a.IsMulticast() {
					ps.p.errorf(n.pos, n.args[0], "vrrp_mcast_group4 must be an IPv4 multicast address, got")
				} else {
					g.VRRPMcastGroup4 = a
				}
			}
		case "vrrp_mcast_group6":
			if a, ok := ps.addrArg(n, 0); ok {
				if !a.Is6() || !a.IsMulticast() {
					ps.p.errorf(n.pos, n.args[0], "vrrp_mcast_group6 must be an IPv6 multicast address, got")
				} else {
					g.VRRPMcastGroup6 = a
				}
			}
		case "lvs_timeouts":
			ps.lvsTimeouts(n, &g.LVSTimeouts)
		case "lvs_sync_daemon":
			ps.lvsSyncDaemon(n)
		default:
			ps.unknown(n, ctxGlobal)
		}
	}
}

// lvsTimeouts reads "lvs_timeouts [tcp N] [tcpfin N] [udp N]".
func (ps *parser) lvsTimeouts(n *node, t *LVSTimeouts) {
	if !ps.leaf(n) {
		return
	}
	if len(n.args) == 0 {
		ps.p.errorf(n.pos, n.kw, "needs at least one of tcp, tcpfin, udp:")
		return
	}
	for i := 0; i < len(n.args); i += 2 {
		var dst *time.Duration
		switch n.args[i] {
		case "tcp":
			dst = &t.TCP
		case "tcpfin":
			dst = &t.TCPFin
		case "udp":
			dst = &t.UDP
		default:
			ps.p.errorf(n.pos, n.args[i], "lvs_timeouts takes tcp, tcpfin or udp, got")
			return
		}
		if i+1 >= len(n.args) {
			ps.p.errorf(n.pos, n.args[i], "lvs_timeouts: missing seconds after")
			return
		}
		v, err := strconv.ParseUint(n.args[i+1], 10, 32)
		if err != nil || v == 0 || v > 86400*31 {
			ps.p.errorf(n.pos, n.args[i+1], "lvs_timeouts: seconds must be 1-2678400, got")
			return
		}
		*dst = time.Duration(v) * time.Second
	}
}

// --- argument helpers ---
//
// Each reports a problem itself and returns ok=false when the value is not
// usable, so callers just skip the assignment.

// leaf checks that n has no block.
func (ps *parser) leaf(n *node) bool {
	if n.block {
		ps.p.errorf(n.pos, n.kw, `unexpected "{" after`)
		return false
	}
	return true
}

// needBlock checks that n has a block.
func (ps *parser) needBlock(n *node) bool {
	if !n.block {
		ps.p.errorf(n.pos, n.kw, `missing "{" after`)
		return false
	}
	return true
}

// args checks that n is a leaf with min..max arguments (max < 0: any).
// Extra arguments are ignored with a warning, as keepalived ignores them.
func (ps *parser) args(n *node, min, max int) bool {
	if !ps.leaf(n) {
		return false
	}
	if len(n.args) < min {
		ps.p.errorf(n.pos, n.kw, "missing value after")
		return false
	}
	if max >= 0 && len(n.args) > max {
		ps.p.warnf(n.pos, n.args[max], "extra words after %s ignored, from", n.kw)
	}
	return true
}

// valueLine checks a line of a value block (notification_email, group, ...).
func (ps *parser) valueLine(n *node) bool {
	if n.anon {
		return false
	}
	return ps.leaf(n)
}

func (ps *parser) stringArg(n *node) (string, bool) {
	if !ps.args(n, 1, 1) {
		return "", false
	}
	return n.args[0], true
}

// flag reads a keyword with an optional <BOOL>; no value means true.
func (ps *parser) flag(n *node) bool {
	if !ps.args(n, 0, 1) {
		return false
	}
	if len(n.args) == 0 {
		return true
	}
	b, ok := parseBool(n.args[0])
	if !ok {
		ps.p.ignoref(n.pos, n.args[0], "%s takes on|off|true|false|yes|no, got", n.kw)
		return false
	}
	return b
}

// optFlag is flag for a setting whose absence means something (it is
// inherited): ok is false when the value is not a boolean, which
// keepalived reports and leaves the setting as it was.
func (ps *parser) optFlag(n *node) (b, ok bool) {
	if !ps.args(n, 0, 1) {
		return false, false
	}
	if len(n.args) == 0 {
		return true, true
	}
	if b, ok = parseBool(n.args[0]); !ok {
		ps.p.ignoref(n.pos, n.args[0], "%s takes on|off|true|false|yes|no, got", n.kw)
	}
	return b, ok
}

// smtpAlert resolves a block's smtp_alert as keepalived does once the
// whole file is read (vrrp.c's vrrp_complete_instance and
// vrrp_complete_init, check_data.c's check_check_data): its own, else the
// global smtp_alert_vrrp or smtp_alert_checker (specific), else the
// global smtp_alert, else def: on for a real_server, off for the others.
func smtpAlert(own opt[bool], specific, global *bool, def bool) bool {
	switch {
	case own.set:
		return own.v
	case specific != nil:
		return *specific
	case global != nil:
		return *global
	}
	return def
}

func parseBool(s string) (bool, bool) {
	switch s {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	return false, false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// have checks that n has at least count arguments. Unlike args it allows a
// block: block keywords have arguments too.
func (ps *parser) have(n *node, count int) bool {
	if len(n.args) < count {
		ps.p.errorf(n.pos, n.kw, "missing value after")
		return false
	}
	return true
}

// uintArg reads argument i as a decimal integer in [min, max].
func (ps *parser) uintArg(n *node, i int, min, max uint64) (uint64, bool) {
	return ps.uintArgNamed(n, i, min, max, n.kw)
}

// uintArgNamed is uintArg with the value called what in messages.
func (ps *parser) uintArgNamed(n *node, i int, min, max uint64, what string) (uint64, bool) {
	if !ps.have(n, i+1) {
		return 0, false
	}
	s := n.args[i]
	v, err := strconv.ParseUint(s, 10, 64)
	if !isDigits(s) || err != nil || v < min || v > max {
		ps.p.ignoref(n.pos, s, "%s must be an integer in [%d, %d], got", what, min, max)
		return 0, false
	}
	return v, true
}

// intArg reads argument i as a decimal integer, possibly negative, in
// [min, max].
func (ps *parser) intArg(n *node, i int, min, max int64) (int64, bool) {
	if !ps.have(n, i+1) {
		return 0, false
	}
	s := n.args[i]
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	v, err := strconv.ParseInt(s, 10, 64)
	if !isDigits(digits) || err != nil || v < min || v > max {
		ps.p.ignoref(n.pos, s, "%s must be an integer in [%d, %d], got", n.kw, min, max)
		return 0, false
	}
	return v, true
}

// one reads the only argument of a one-value keyword as an integer.
func (ps *parser) one(n *node, min, max uint64) (uint64, bool) {
	if !ps.args(n, 1, 1) {
		return 0, false
	}
	return ps.uintArg(n, 0, min, max)
}

// maxTimer bounds every TIMER value; keepalived's own bound is larger than
// time.Duration can hold.
const maxTimer = 1_000_000_000 * time.Second

// parseTimer reads keepalived's <TIMER>: decimal seconds, microsecond
// resolution (further digits are truncated, as keepalived truncates).
func parseTimer(s string) (time.Duration, bool) {
	intPart, frac, hasDot := strings.Cut(s, ".")
	if (intPart == "" && frac == "") || (intPart != "" && !isDigits(intPart)) || (hasDot && frac != "" && !isDigits(frac)) {
		return 0, false
	}
	if len(intPart) > 10 {
		return 0, false
	}
	sec, _ := strconv.ParseUint("0"+intPart, 10, 64)
	if len(frac) > 6 {
		frac = frac[:6]
	}
	us, _ := strconv.ParseUint((frac + "000000")[:6], 10, 64)
	d := time.Duration(sec)*time.Second + time.Duration(us)*time.Microsecond
	if d > maxTimer {
		return 0, false
	}
	return d, true
}

// timerArg reads the only argument as a <TIMER> in [min, max].
func (ps *parser) timerArg(n *node, min, max time.Duration) (time.Duration, bool) {
	if !ps.args(n, 1, 1) {
		return 0, false
	}
	d, ok := parseTimer(n.args[0])
	if !ok || d < min || d > max {
		ps.p.ignoref(n.pos, n.args[0], "%s must be seconds in [%s, %s], got", n.kw, seconds(min), seconds(max))
		return 0, false
	}
	return d, true
}

// secondsArg reads the only argument as whole seconds in [min, max].
func (ps *parser) secondsArg(n *node, min, max uint64) (time.Duration, bool) {
	v, ok := ps.one(n, min, max)
	return time.Duration(v) * time.Second, ok
}

func (ps *parser) addrArg(n *node, i int) (netip.Addr, bool) {
	if !ps.have(n, i+1) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(n.args[i])
	if err != nil {
		ps.p.errorf(n.pos, n.args[i], "%s: not an IP address:", n.kw)
		return netip.Addr{}, false
	}
	return a, true
}

// portArg reads argument i as a port in [min, 65535].
func (ps *parser) portArg(n *node, i int, min uint64) (uint16, bool) {
	what := n.kw
	if !strings.HasSuffix(what, "_port") {
		what += " port"
	}
	v, ok := ps.uintArgNamed(n, i, min, 65535, what)
	return uint16(v), ok
}

// atLeastOne applies keepalived's "must be greater than 0, setting to 1".
func (ps *parser) atLeastOne(n *node, v int) int {
	if v < 1 {
		ps.p.warnf(n.pos, n.args[0], "%s must be at least 1; using 1 instead of", n.kw)
		return 1
	}
	return v
}

// scriptArg reads "kw <STRING>|<QUOTED-STRING> [username [groupname]]".
// keepalived re-reads such lines with shell-like quoting, then splits the
// command itself the same way.
func (ps *parser) scriptArg(n *node, withUser bool) *Script {
	if !ps.args(n, 1, -1) {
		return nil
	}
	words, err := splitShell(n.raw)
	if err != nil || len(words) < 2 {
		ps.p.errorf(n.pos, n.args[0], "%s: cannot read the command (%v):", n.kw, err)
		return nil
	}
	args, err := splitShell(words[1])
	if err != nil {
		ps.p.errorf(n.pos, words[1], "%s: cannot split the command (%v):", n.kw, err)
		return nil
	}
	if len(args) == 0 {
		ps.p.errorf(n.pos, n.kw, "empty command for")
		return nil
	}
	s := &Script{Args: args}
	rest := words[2:]
	if withUser {
		if len(rest) > 0 {
			s.User = rest[0]
		}
		if len(rest) > 1 {
			s.Group = rest[1]
		}
		if len(rest) > 2 {
			ps.p.warnf(n.pos, rest[2], "extra words after %s user and group ignored, from", n.kw)
		}
	} else if len(rest) > 0 {
		ps.p.warnf(n.pos, rest[0], "%s takes one command (quote it to pass arguments); ignored words from", n.kw)
	}
	return s
}
