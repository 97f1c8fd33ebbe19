package ipvsadm

import "strings"

// This file is the part of libpopt that ipvsadm relies on: short-option
// clusters ("-Ln"), attached arguments ("-p600", "-t=addr", "--scheduler=rr"),
// optional arguments (-p takes the next word unless it starts with '-'),
// "--", and non-option words set aside for later ("--set 900 120 300").

type argKind uint8

const (
	argNone argKind = iota
	argRequired
	argOptional
)

type poptOption struct {
	long  string
	short byte
	arg   argKind
	tag   int
}

// Tags for options without a short name, above the ASCII range as in
// ipvsadm.
const (
	tagSet = 128 + iota
	tagStartDaemon
	tagStopDaemon
	tagMcastInterface
	tagTimeout
	tagDaemon
	tagStats
	tagRate
	tagThresholds
	tagPersistentConn
	tagSort
	tagNoSort
	tagPE
	tagSCTPService
	tagMcastGroup
	tagMcastPort
	tagMcastTTL
	tagSyncMaxlen
	tagTunInfo
	tagTunType
	tagTunPort
	tagTunNoCsum
	tagTunCsum
	tagTunRemCsum
	tagSyncID
	tagFullNAT
)

var poptTable = []poptOption{
	{"add-service", 'A', argNone, 'A'},
	{"edit-service", 'E', argNone, 'E'},
	{"delete-service", 'D', argNone, 'D'},
	{"clear", 'C', argNone, 'C'},
	{"list", 'L', argNone, 'L'},
	{"list", 'l', argNone, 'l'},
	{"zero", 'Z', argNone, 'Z'},
	{"add-server", 'a', argNone, 'a'},
	{"edit-server", 'e', argNone, 'e'},
	{"delete-server", 'd', argNone, 'd'},
	{"set", 0, argNone, tagSet},
	{"help", 'h', argNone, 'h'},
	{"version", 'v', argNone, 'v'},
	{"restore", 'R', argNone, 'R'},
	{"save", 'S', argNone, 'S'},
	{"start-daemon", 0, argRequired, tagStartDaemon},
	{"stop-daemon", 0, argRequired, tagStopDaemon},
	{"tcp-service", 't', argRequired, 't'},
	{"udp-service", 'u', argRequired, 'u'},
	{"sctp-service", 0, argRequired, tagSCTPService},
	{"fwmark-service", 'f', argRequired, 'f'},
	{"scheduler", 's', argRequired, 's'},
	{"persistent", 'p', argOptional, 'p'},
	{"netmask", 'M', argRequired, 'M'},
	{"real-server", 'r', argRequired, 'r'},
	{"masquerading", 'm', argNone, 'm'},
	{"ipip", 'i', argNone, 'i'},
	{"gatewaying", 'g', argNone, 'g'},
	{"weight", 'w', argRequired, 'w'},
	{"u-threshold", 'x', argRequired, 'x'},
	{"l-threshold", 'y', argRequired, 'y'},
	{"numeric", 'n', argNone, 'n'},
	{"connection", 'c', argNone, 'c'},
	{"mcast-interface", 0, argRequired, tagMcastInterface},
	{"syncid", 0, argRequired, tagSyncID},
	{"timeout", 0, argNone, tagTimeout},
	{"daemon", 0, argNone, tagDaemon},
	{"stats", 0, argNone, tagStats},
	{"rate", 0, argNone, tagRate},
	{"thresholds", 0, argNone, tagThresholds},
	{"persistent-conn", 0, argNone, tagPersistentConn},
	{"nosort", 0, argNone, tagNoSort},
	{"sort", 0, argNone, tagSort},
	{"exact", 'X', argNone, 'X'},
	{"ipv6", '6', argNone, '6'},
	{"ops", 'o', argNone, 'o'},
	{"pe", 0, argRequired, tagPE},
	{"sched-flags", 'b', argRequired, 'b'},
	{"mcast-group", 0, argRequired, tagMcastGroup},
	{"mcast-port", 0, argRequired, tagMcastPort},
	{"mcast-ttl", 0, argRequired, tagMcastTTL},
	{"sync-maxlen", 0, argRequired, tagSyncMaxlen},
	{"tun-info", 0, argNone, tagTunInfo},
	{"tun-type", 0, argRequired, tagTunType},
	{"tun-port", 0, argRequired, tagTunPort},
	{"tun-nocsum", 0, argNone, tagTunNoCsum},
	{"tun-csum", 0, argNone, tagTunCsum},
	{"tun-remcsum", 0, argNone, tagTunRemCsum},
	// DPVS's ipvsadm's FULLNAT options (its -b for --fullnat is
	// upstream's --sched-flags: xlbadm keeps upstream's).
	{"fullnat", 0, argNone, tagFullNAT},
	{"add-laddr", 'P', argNone, 'P'},
	{"del-laddr", 'Q', argNone, 'Q'},
	{"get-laddr", 'G', argNone, 'G'},
	{"laddr", 'z', argRequired, 'z'},
}

// popt error texts (poptStrerror).
const (
	poptBadOpt      = "unknown option"
	poptNoArg       = "missing argument"
	poptUnwantedArg = "option does not take an argument"
)

type poptState struct {
	argv      []string
	next      int
	cluster   string // short options still to read from argv[next-1]
	rest      bool   // "--" seen: every later word is a leftover
	leftovers []string
}

type poptResult struct {
	opt    *poptOption
	arg    string
	hasArg bool
}

// badOption is poptBadOption: the last word consumed.
func (p *poptState) badOption() string {
	if p.next > 0 {
		return p.argv[p.next-1]
	}
	return ""
}

// nextOpt returns the next option; done at the end; errMsg set on a popt
// error.
func (p *poptState) nextOpt() (r poptResult, done bool, errMsg string) {
	for p.cluster == "" {
		if p.next >= len(p.argv) {
			return r, true, ""
		}
		w := p.argv[p.next]
		p.next++
		switch {
		case p.rest || len(w) < 2 || w[0] != '-':
			p.leftovers = append(p.leftovers, w)
		case w == "--":
			p.rest = true
		case strings.HasPrefix(w, "--"):
			return p.long(w[2:])
		default:
			p.cluster = w[1:]
		}
	}
	c := p.cluster[0]
	p.cluster = p.cluster[1:]
	o := findShort(c)
	if o == nil {
		p.cluster = ""
		return r, false, poptBadOpt
	}
	r.opt = o
	if o.arg == argNone {
		return r, false, ""
	}
	if p.cluster != "" {
		r.arg, r.hasArg = strings.TrimPrefix(p.cluster, "="), true
		p.cluster = ""
		return r, false, ""
	}
	return p.takeNext(r)
}

func (p *poptState) long(s string) (r poptResult, done bool, errMsg string) {
	name, val, hasVal := strings.Cut(s, "=")
	o := findLong(name)
	if o == nil {
		return r, false, poptBadOpt
	}
	r.opt = o
	if o.arg == argNone {
		if hasVal {
			return r, false, poptUnwantedArg
		}
		return r, false, ""
	}
	if hasVal {
		r.arg, r.hasArg = val, true
		return r, false, ""
	}
	return p.takeNext(r)
}

func (p *poptState) takeNext(r poptResult) (poptResult, bool, string) {
	if p.next >= len(p.argv) {
		if r.opt.arg == argOptional {
			return r, false, ""
		}
		return r, false, poptNoArg
	}
	w := p.argv[p.next]
	if r.opt.arg == argOptional && strings.HasPrefix(w, "-") {
		return r, false, ""
	}
	p.next++
	r.arg, r.hasArg = w, true
	return r, false, ""
}

// leftover is poptGetArg.
func (p *poptState) leftover() (string, bool) {
	if len(p.leftovers) == 0 {
		return "", false
	}
	w := p.leftovers[0]
	p.leftovers = p.leftovers[1:]
	return w, true
}

func findShort(c byte) *poptOption {
	for i := range poptTable {
		if poptTable[i].short == c && c != 0 {
			return &poptTable[i]
		}
	}
	return nil
}

func findLong(name string) *poptOption {
	for i := range poptTable {
		if poptTable[i].long == name {
			return &poptTable[i]
		}
	}
	return nil
}
