package config

import (
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The blocks of the checkers parsed here, for the keyword table
// (keywords.go). "host" is SMTP_CHECK's host block.
const (
	ctxSMTPCheck = "SMTP_CHECK"
	ctxSMTPHost  = "host"
	ctxUDPCheck  = "UDP_CHECK"
	ctxPingCheck = "PING_CHECK"
	ctxFileCheck = "FILE_CHECK"
)

// defaultHeloName is keepalived's SMTP_DEFAULT_HELO (check_smtp.h).
const defaultHeloName = "smtpchecker.keepalived.org"

// connKeyword reads the connection options of a checker (or an SMTP host)
// into d, reporting whether n was one. connect_timeout is not among them:
// it is inherited from the real and virtual server.
func (ps *parser) connKeyword(n *node, d *checkerDraft) bool {
	c := &d.c
	switch n.kw {
	case "connect_ip":
		if a, ok := ps.addrArg(n, 0); ok && ps.args(n, 1, 1) {
			d.connectIP.put(a)
		}
	case "connect_port":
		if ps.args(n, 1, 1) {
			if p, ok := ps.portArg(n, 0, 1); ok {
				d.connectPort.put(p)
			}
		}
	case "bindto":
		if a, ok := ps.addrArg(n, 0); ok && ps.args(n, 1, 1) {
			c.BindTo = a
		}
	case "bind_port":
		if ps.args(n, 1, 1) {
			if p, ok := ps.portArg(n, 0, 1); ok {
				c.BindPort = p
			}
		}
	case "bind_if":
		if s, ok := ps.stringArg(n); ok {
			c.BindIf = s
		}
	default:
		return false
	}
	return true
}

// smtpHost reads a host block of SMTP_CHECK: a connection of its own. Its
// retry, delay_before_retry, warmup, delay_loop and alpha are the whole
// checker's, as in keepalived, where they set the one checker's fields.
func (ps *parser) smtpHost(b *node, main *checkerDraft) *checkerDraft {
	if !ps.needBlock(b) {
		return nil
	}
	h := &checkerDraft{c: Checker{Kind: SMTPCheck, Pos: b.pos}}
	for _, n := range b.children {
		switch {
		case ps.connKeyword(n, h):
		case n.kw == "connect_timeout":
			if t, ok := ps.timerArg(n, time.Microsecond, 4294967295*time.Microsecond); ok {
				h.inh.connectTimeout.put(t)
			}
		case ps.inheritedKeyword(n, &main.inh, ctxSMTPHost):
		default:
			ps.unknown(n, ctxSMTPHost)
		}
	}
	return h
}

// smtpCheckers turns an SMTP_CHECK block into the checkers keepalived
// makes of it (smtp_check_end_handler): the block's own connection when it
// sets a connection option or has no host blocks, and one per host block,
// each with the block's helo_name and timing. A host without
// connect_timeout takes the block's (keepalived 2.2.7 leaves it 0, which
// times the connection out at once: a bug, not a setting).
func smtpCheckers(d *checkerDraft) []*checkerDraft {
	var out []*checkerDraft
	if d.connSet || len(d.hosts) == 0 {
		out = append(out, d)
	}
	for _, h := range d.hosts {
		x := *d
		x.hosts = nil
		x.c.Pos = h.c.Pos
		x.connectIP, x.connectPort = h.connectIP, h.connectPort
		x.c.BindTo, x.c.BindPort, x.c.BindIf = h.c.BindTo, h.c.BindPort, h.c.BindIf
		if h.inh.connectTimeout.set {
			x.inh.connectTimeout = h.inh.connectTimeout
		}
		out = append(out, &x)
	}
	d.hosts = nil
	return out
}

// udpKeyword reads UDP_CHECK's own keywords, reporting whether n was one.
func (ps *parser) udpKeyword(n *node, d *checkerDraft) bool {
	c := &d.c
	switch n.kw {
	case "payload":
		if !ps.args(n, 1, -1) {
			return true
		}
		data, _, lastFF, ok := readHexStr(strings.Join(n.args, " "), false)
		switch {
		case !ok:
			ps.p.ignoref(n.pos, strings.Join(n.args, " "), "UDP_CHECK payload is not a hex string (keepalived sends its default payload):")
		default:
			if lastFF {
				ps.p.unlikef(n.pos, n.args[len(n.args)-1], "keepalived 2.2.7 refuses a payload ending in byte FF and sends its default payload; xlb sends this one:")
			}
			c.Payload = data
		}
	case "require_reply":
		if !ps.leaf(n) {
			return true
		}
		c.RequireReply = true
		if len(n.args) == 0 {
			return true
		}
		data, mask, lastFF, ok := readHexStr(strings.Join(n.args, " "), true)
		switch {
		case !ok:
			ps.p.ignoref(n.pos, strings.Join(n.args, " "), "UDP_CHECK require_reply pattern is not a hex string (any reply will do):")
		default:
			if lastFF {
				ps.p.unlikef(n.pos, n.args[len(n.args)-1], "keepalived 2.2.7 refuses a pattern ending in byte FF and takes any reply; xlb checks replies against this one:")
			}
			c.ReplyData, c.ReplyMask = data, mask
		}
	case "min_reply_length":
		if v, ok := ps.one(n, 0, math.MaxUint16); ok {
			c.MinReplyLength = int(v)
		}
	case "max_reply_length":
		if v, ok := ps.one(n, 0, math.MaxUint16); ok {
			c.MaxReplyLength = int(v)
		}
	default:
		return false
	}
	return true
}

// readHexStr reads a hex string as keepalived's read_hex_str does: blanks
// anywhere, two digits to a byte, a digit alone before a blank a byte of
// its own ("Ab12f 3" is AB 12 0F 03); with wildcard, x or X is a nibble
// the mask sets (not compared). lastFF reports a last byte of FF, which
// keepalived 2.2.7 takes for its invalid-character marker and refuses.
func readHexStr(s string, wildcard bool) (data, mask []byte, lastFF, ok bool) {
	nibble := func(c byte) (v, m byte, ok bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', 0, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, 0, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, 0, true
		case wildcard && (c == 'x' || c == 'X'):
			return 0, 0x0f, true
		}
		return 0, 0, false
	}
	var masked bool
	for i := 0; ; {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i == len(s) {
			break
		}
		v, m, good := nibble(s[i])
		if !good {
			return nil, nil, false, false
		}
		i++
		if i < len(s) && s[i] != ' ' && s[i] != '\t' {
			v2, m2, good := nibble(s[i])
			if !good {
				return nil, nil, false, false
			}
			i++
			v, m = v<<4|v2, m<<4|m2
		}
		data = append(data, v)
		mask = append(mask, m)
		masked = masked || m != 0
	}
	if len(data) == 0 {
		return nil, nil, false, false
	}
	if !masked {
		mask = nil
	}
	return data, mask, data[len(data)-1] == 0xff, true
}

// fileCheck reads a FILE_CHECK block: the track_file it reads, which must
// be defined above it (keepalived looks it up when it reads the line), and
// the weight, the track_file's unless given.
func (ps *parser) fileCheck(b *node) *checkerDraft {
	if !ps.needBlock(b) {
		return nil
	}
	if len(b.args) > 0 {
		ps.p.warnf(b.pos, b.args[0], "extra words after %s ignored, from", b.kw)
	}
	d := ps.newChecker(Checker{Kind: FileCheck, Pos: b.pos})
	c := &d.c
	var tf *TrackFile
	for _, n := range b.children {
		switch n.kw {
		case "track_file":
			s, ok := ps.stringArg(n)
			if !ok {
				continue
			}
			if f := ps.cfg.TrackFile(s); f != nil {
				tf, c.TrackFile = f, s
			} else {
				ps.p.ignoref(n.pos, s, "FILE_CHECK track_file not found (it must be defined above the FILE_CHECK):")
			}
		case "weight":
			if !ps.args(n, 1, 2) {
				continue
			}
			w, ok := ps.intArg(n, 0, -math.MaxInt32, math.MaxInt32)
			if !ok {
				continue
			}
			rev := false
			if len(n.args) == 2 {
				switch n.args[1] {
				case "reverse":
					rev = true
				case "noreverse":
				default:
					ps.p.ignoref(n.pos, n.args[1], "FILE_CHECK weight takes reverse or noreverse after the value; the weight line is")
					continue
				}
			}
			c.FileWeight, c.FileReverse, d.fileWeightSet = int(w), rev, true
		default:
			ps.unknown(n, ctxFileCheck)
		}
	}
	if tf == nil {
		ps.p.ignoref(b.pos, b.kw, "no track_file in this FILE_CHECK, so it checks nothing:")
		return nil
	}
	c.TrackFilePath = tf.Path
	if !d.fileWeightSet {
		c.FileWeight, c.FileReverse = tf.Weight, tf.Reverse
	}
	return d
}

// bfdCheck warns about a BFD_CHECK of the real server rs, which xlb does
// not run.
func (ps *parser) bfdCheck(n, rs *node) {
	for _, o := range rs.children {
		if _, ok := checkerKinds[o.kw]; ok || o.kw == "FILE_CHECK" {
			ps.p.unlikef(n.pos, n.kw, "checker not implemented by xlb, ignored: BFD will never take this real server down (its other checkers still do):")
			return
		}
	}
	ps.p.unlikef(n.pos, n.kw, "checker not implemented by xlb, ignored: BFD will never take this real server down, and with no other checker it is always up:")
}

// regexDraft gathers a url's regex keywords, which keepalived reads in any
// order and applies when the url block ends (url_check).
type regexDraft struct {
	pattern    *string
	pos        Pos
	options    []string
	noMatch    bool
	min, max   int64 // max -1: not set
	maxSet     bool
	minPos     Pos
	settingPos Pos // of the first setting other than regex
	setting    string
}

// pcreOptions are the regex_options keepalived 2.2.7 knows (check_http.c),
// each with what xlb makes of it: a flag for RE2, nothing (no effect on
// what matches, or nothing RE2 could do differently), or a refusal.
var pcreOptions = map[string]string{
	"caseless": "i", "dotall": "s", "multiline": "m", "ungreedy": "U",
	"dollar_endonly": "", "firstline": "", "utf": "", "never_utf": "", "never_ucp": "",
	"auto_callout": "", "dupnames": "", "match_unset_backref": "", "no_auto_capture": "",
	"no_auto_possess": "", "no_dotstar_anchor": "", "no_start_optimize": "",
	"never_backslash_c": "", "alt_circumflex": "", "alt_verbnames": "", "use_offset_limit": "",
	"extended":          "RE2 has no extended mode (whitespace and # comments in the pattern)",
	"allow_empty_class": "RE2 reads [] as the start of a class, not an empty one",
	"alt_bsux":          "RE2 reads \\U, \\u and \\x as Perl does, not as JavaScript",
	"ucp":               "RE2's \\d, \\w, \\s and \\b are ASCII only",
}

// regexKeyword reads one of a url's regex keywords. It reports false on an
// error.
func (ps *parser) regexKeyword(n *node, rx *regexDraft) bool {
	if rx.setting == "" && n.kw != "regex" {
		rx.settingPos, rx.setting = n.pos, n.kw
	}
	switch n.kw {
	case "regex":
		if !ps.leaf(n) {
			return false
		}
		// keepalived re-reads the line with quotes and backslash escapes
		// decoded (alloc_strvec_quoted_escaped), as for scripts.
		words, err := splitShell(n.raw)
		if err != nil || len(words) != 2 {
			ps.p.ignoref(n.pos, n.kw, "regex takes one pattern (quote it if it has blanks):")
			return true
		}
		ps.escapeWarning(n)
		rx.pattern, rx.pos = &words[1], n.pos
	case "regex_no_match":
		if ps.args(n, 0, 0) {
			rx.noMatch = true
		}
	case "regex_options":
		if !ps.leaf(n) {
			return false
		}
		good := true
		for _, o := range n.args {
			why, known := pcreOptions[o]
			switch {
			case !known:
				ps.p.ignoref(n.pos, o, "unknown regex option")
			case len(why) > 1:
				ps.p.errorf(n.pos, o, "regex option not supported by xlb (%s):", why)
				good = false
			case !slices.Contains(rx.options, o):
				rx.options = append(rx.options, o)
			}
		}
		return good
	case "regex_min_offset", "regex_max_offset":
		if !ps.args(n, 1, 1) {
			return false
		}
		v, err := strconv.ParseInt(n.args[0], 10, 64)
		if err != nil || v < 0 || !isDigits(n.args[0]) {
			ps.p.errorf(n.pos, n.args[0], "%s must be a byte offset (a whole number), got", n.kw)
			return false
		}
		if n.kw == "regex_min_offset" {
			rx.min, rx.minPos = v, n.pos
		} else {
			rx.max, rx.maxSet = v, true
		}
	case "regex_stack":
		if ps.args(n, 2, 2) {
			ps.p.warnf(n.pos, n.kw, "PCRE2's JIT stack size; Go's regexp needs none, ignored:")
		}
	}
	return true
}

// escapeWarning warns about a PCRE escape written with one backslash in a
// regex line: keepalived decodes the line's escapes first, so "\d" reaches
// PCRE2 as "d" and "\b" as a backspace, which is seldom what was meant.
func (ps *parser) escapeWarning(n *node) {
	for i := 0; i+1 < len(n.raw); i++ {
		if n.raw[i] != '\\' {
			continue
		}
		c := n.raw[i+1]
		i++ // a pair either way: "\\" is one backslash
		if strings.IndexByte("dDwWsSbBAzZGhHvVRNKpPQEk.()[]{}*+?|^$", c) >= 0 {
			e := n.raw[i-1 : i+1]
			ps.p.warnf(n.pos, e, `keepalived decodes the regex line's escapes before PCRE2 sees it, so this reaches it as %q; write \\%c for the PCRE escape:`, mustUnescape(e), c)
			return
		}
	}
}

func mustUnescape(e string) string {
	w, err := splitShell(e)
	if err != nil || len(w) != 1 {
		return e
	}
	return w[0]
}

// finishRegex applies a url's regex settings (url_check in keepalived):
// settings without a regex are ignored, as are offsets that leave no room.
func (ps *parser) finishRegex(rx *regexDraft, u *URL) bool {
	if rx.pattern == nil {
		if rx.setting != "" && rx.setting != "regex_stack" {
			ps.p.ignoref(rx.settingPos, rx.setting, "regex settings without a regex in this url:")
		}
		return true
	}
	max := int64(-1)
	if rx.maxSet {
		max = rx.max
	}
	min := rx.min
	if max >= 0 && min > max {
		ps.p.ignoref(rx.minPos, "regex_min_offset", "regex_min_offset %d is past regex_max_offset %d; both are", min, max)
		min, max = 0, -1
	}
	re2, err := pcreToRE2(*rx.pattern, rx.options)
	if err != nil {
		ps.p.errorf(rx.pos, *rx.pattern, "regex cannot run on Go's RE2 engine (%v): PCRE2-only syntax or no valid pattern, and xlb will not run a different check than keepalived's:", err)
		return false
	}
	u.Regex = &URLRegex{Pattern: *rx.pattern, Options: rx.options, RE2: re2, NoMatch: rx.noMatch,
		MinOffset: min, MaxOffset: max, FirstLine: slices.Contains(rx.options, "firstline")}
	return true
}

// pcreToRE2 writes a PCRE2 pattern, with keepalived's regex_options, as an
// RE2 expression that matches the same text, or says why it cannot:
// lookarounds, backreferences, possessive quantifiers, \Z and the like
// are refused by RE2's parser; PCRE's \v (any vertical space) would parse
// with another meaning and is refused here. Without dollar_endonly, PCRE's
// $ also matches before a newline that ends the text: it becomes \n?\z.
// (PCRE2's \s also takes the vertical tab, RE2's does not.)
func pcreToRE2(pattern string, options []string) (string, error) {
	if i := unescapedIndex(pattern, 'v'); i >= 0 || unescapedIndex(pattern, 'V') >= 0 {
		return "", fmt.Errorf(`PCRE's \v and \V (vertical space) mean something else in RE2`)
	}
	flags := syntax.Perl
	for _, o := range options {
		switch pcreOptions[o] {
		case "i":
			flags |= syntax.FoldCase
		case "s":
			flags |= syntax.DotNL
		case "m":
			flags &^= syntax.OneLine
		case "U":
			flags |= syntax.NonGreedy
		}
	}
	re, err := syntax.Parse(pattern, flags)
	if err != nil {
		return "", err
	}
	if !slices.Contains(options, "dollar_endonly") {
		re = pcreDollar(re)
	}
	out := re.String()
	if _, err := regexp.Compile(out); err != nil {
		return "", fmt.Errorf("translated to %q: %w", out, err)
	}
	return out, nil
}

// pcreDollar rewrites each $ that matches only at the end of the text into
// PCRE's $: at the end, or before a newline at the end.
func pcreDollar(re *syntax.Regexp) *syntax.Regexp {
	if re.Op == syntax.OpEndText && re.Flags&syntax.WasDollar != 0 {
		nl := &syntax.Regexp{Op: syntax.OpLiteral, Rune: []rune{'\n'}}
		end := &syntax.Regexp{Op: syntax.OpEndText}
		return &syntax.Regexp{Op: syntax.OpConcat, Sub: []*syntax.Regexp{
			{Op: syntax.OpQuest, Sub: []*syntax.Regexp{nl}}, end}}
	}
	for i, s := range re.Sub {
		re.Sub[i] = pcreDollar(s)
	}
	return re
}

// unescapedIndex is the index of the first \c in s that is an escape (not
// the second half of \\), or -1.
func unescapedIndex(s string, c byte) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\\' {
			if s[i+1] == c {
				return i
			}
			i++
		}
	}
	return -1
}
