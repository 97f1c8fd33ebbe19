// Command kwtable writes README.md's "keepalived.conf coverage" tables:
// every block and keyword keepalived 2.2.7 accepts, and what xlb does with
// each on each data plane, found by asking the code rather than a list kept
// by hand:
//
//   - whether xlb implements a keyword: config.KeywordUses, which reads
//     each keyword in a minimal configuration as xlb reads any file and
//     looks for the "not implemented by xlb" warning (Warning.Unlike);
//   - what each data plane makes of it: the configuration that uses it
//     (alone, with a value, with each value the data planes decide on:
//     every scheduler, forwarding method and protocol) goes through
//     director.Validate, what `xlb check` and `xlb run` ask, with xdp.Caps
//     and ipvs.Caps.
//
// With -w FILE it replaces the part of FILE between the kwtable markers;
// without, it prints that part. A test fails when README.md differs from
// what it writes: run `make readme` (go run ./tools/kwtable -w README.md)
// after changing the parser, the keyword table or a data plane's Caps.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/dataplane/ipvs"
	"github.com/xlbproject/xlb/pkg/dataplane/xdp"
	"github.com/xlbproject/xlb/pkg/director"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

const (
	startMarker = "<!-- kwtable start -->"
	endMarker   = "<!-- kwtable end -->"
)

func main() {
	w := flag.String("w", "", "markdown file whose kwtable part to replace (else print it)")
	flag.Parse()
	if err := run(*w); err != nil {
		fmt.Fprintln(os.Stderr, "kwtable:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	body, err := generate()
	if err != nil {
		return err
	}
	if path == "" {
		fmt.Print(body)
		return nil
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := replace(doc, body)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bytes.Equal(out, doc) {
		return nil
	}
	return os.WriteFile(path, out, 0o644)
}

// replace puts body between doc's markers, in place of what is there.
func replace(doc []byte, body string) ([]byte, error) {
	i, j := bytes.Index(doc, []byte(startMarker)), bytes.Index(doc, []byte(endMarker))
	if i < 0 || j < i || bytes.Count(doc, []byte(startMarker)) != 1 || bytes.Count(doc, []byte(endMarker)) != 1 {
		return nil, fmt.Errorf("no single %q ... %q part", startMarker, endMarker)
	}
	return slices.Concat(doc[:i+len(startMarker)], []byte("\n"), []byte(body), doc[j:]), nil
}

// outcome is what a data plane does with a keyword, or a value of one.
type outcome int

const (
	runs     outcome = iota
	byValue          // some values run, others are refused
	refuses          // `xlb check` names the line; `xlb run` does not start with it
	ignored          // not implemented: a warning, "unlike keepalived"
	outcomes         // how many
)

func (o outcome) String() string {
	return [...]string{"runs", "by value (below)", "refuses", "ignored, warns"}[o]
}

// planes are the data planes, as the columns show them.
var planes = []struct {
	name string
	caps dataplane.Caps
}{{"XDP", xdp.Caps}, {"IPVS", ipvs.Caps}}

// verdict is an outcome per data plane (planes' order).
type verdict [2]outcome

// judge reads src, a whole keepalived.conf, and asks each data plane
// whether it serves it. ok is false when src does not read without an
// error, or when value, given, was not taken: a warning at line at is
// about it (keepalived, and xlb, ignore such a value).
func judge(src string, at int, value string) (v verdict, ok bool) {
	cfg, err := config.ParseBytes("keepalived.conf", []byte(src))
	if err != nil {
		return v, false
	}
	if value != "" {
		for _, w := range cfg.Warnings {
			if w.Line == at && w.Word == value {
				return v, false
			}
		}
	}
	for i, p := range planes {
		v[i] = runs
		if director.Validate(cfg, p.caps) != nil {
			v[i] = refuses
		}
	}
	return v, true
}

// probe is a value tried with every keyword, to find the keywords whose
// values the data planes decide on.
type probe struct {
	keyword string // the keyword it is a value of, for the values table
	value   string
	lines   []string // more lines with it (a scheduler's flags)
}

// probes are the values the data planes decide on, from where xlb keeps
// them: the scheduler registry, lvs.Forward and lvs.Protocol; a value the
// parser does not take is dropped (Forward's "local", Protocol's "IP").
func probes() []probe {
	var out []probe
	for _, s := range sched.Schedulers {
		p := probe{keyword: "lvs_sched", value: s.Name}
		for _, f := range s.Flags {
			p.lines = append(p.lines, f.Name)
		}
		out = append(out, p)
	}
	seen := map[string]bool{}
	for f := range lvs.Forward(256) {
		// FULLNAT needs its local addresses, which a line beside the
		// keyword cannot give: it is a feature row (features) instead.
		if k := f.Kind(); k != "invalid" && f != lvs.FNAT && !seen[k] && taken("lvs_method", k) {
			seen[k] = true
			out = append(out, probe{keyword: "lvs_method", value: k})
		}
	}
	for p := range lvs.Protocol(255) {
		if s := p.String(); !seen[s] && taken("protocol", s) {
			seen[s] = true
			out = append(out, probe{keyword: "protocol", value: s})
		}
	}
	return out
}

// taken says whether the parser takes value for a virtual_server's
// keyword kw.
func taken(kw, value string) bool {
	src, at, _ := config.KeywordExample("virtual_server", kw+" "+value)
	_, ok := judge(src, at, value)
	return ok
}

// keywordVerdict is what each data plane does with kw in block: every way
// of writing it that reads cleanly (alone, with a value, with a block,
// with each probe value) is judged; a keyword refused with some values
// and served with others is decided by its value.
func keywordVerdict(u config.KeywordUse, probes []probe) verdict {
	if !u.Implemented {
		return verdict{ignored, ignored}
	}
	type try struct{ line, value string }
	tries := []try{{u.Keyword, ""}, {u.Keyword + " {\n}", ""}, {u.Keyword + " 1", "1"}}
	for _, p := range probes {
		tries = append(tries, try{u.Keyword + " " + p.value, p.value})
	}
	var seen [2][outcomes]bool
	for _, t := range tries {
		src, at, _ := config.KeywordExample(u.Block, t.line)
		if v, ok := judge(src, at, t.value); ok {
			for i := range v {
				seen[i][v[i]] = true
			}
		}
	}
	var v verdict
	for i := range v {
		switch {
		case seen[i][runs] && seen[i][refuses]:
			v[i] = byValue
		case seen[i][refuses]:
			v[i] = refuses
		default:
			v[i] = runs
		}
	}
	return v
}

// blocks are the tables, in the order of a keepalived.conf, with what
// each is called; blocks the keyword table has and this list not come
// after, by name.
var blocks = []struct{ name, title string }{
	{"top", "top level"},
	{"global_defs", "global_defs"},
	{"vrrp_script", "vrrp_script"},
	{"track_file", "track_file (vrrp_track_file)"},
	{"vrrp_instance", "vrrp_instance"},
	{"authentication", "authentication (in vrrp_instance)"},
	{"vrrp_sync_group", "vrrp_sync_group"},
	{"virtual_server", "virtual_server (ADDR PORT, fwmark N, group NAME)"},
	{"real_server", "real_server"},
	{"TCP_CHECK", "TCP_CHECK"},
	{"HTTP_GET", "HTTP_GET"},
	{"SSL_GET", "SSL_GET"},
	{"url", "url (in HTTP_GET, SSL_GET)"},
	{"MISC_CHECK", "MISC_CHECK"},
	{"DNS_CHECK", "DNS_CHECK"},
	{"SMTP_CHECK", "SMTP_CHECK"},
	{"host", "host (in SMTP_CHECK)"},
	{"UDP_CHECK", "UDP_CHECK"},
	{"PING_CHECK", "PING_CHECK"},
	{"FILE_CHECK", "FILE_CHECK"},
}

// feature is a row of the values table that is not a keyword's value: a
// kind of virtual server, or a setting, as a whole configuration.
type feature struct{ what, src string }

// features are the virtual servers whose address, port or family a data
// plane decides on, and the settings it may refuse whatever their value.
var features = []feature{
	{"IPv6 virtual_server (lvs_method DR)", "virtual_server 2001:db8::1 80 {\n lvs_method DR\n real_server 2001:db8::2 80 {\n }\n}\n"},
	{"IPv6 virtual_server, lvs_method NAT (NAT66)", "virtual_server 2001:db8::1 80 {\n lvs_method NAT\n real_server 2001:db8::2 8080 {\n }\n}\n"},
	{"IPv6 virtual_server, lvs_method TUN", "virtual_server 2001:db8::1 80 {\n lvs_method TUN\n real_server 2001:db8::2 80 {\n }\n}\n"},
	{"IPv6 virtual_server with persistence_timeout", "virtual_server 2001:db8::1 80 {\n lvs_method DR\n persistence_timeout 300\n real_server 2001:db8::2 80 {\n }\n}\n"},
	{"IPv4 real_server of an IPv6 virtual_server (lvs_method TUN)", "virtual_server 2001:db8::1 80 {\n lvs_method TUN\n real_server 10.0.0.2 80 {\n }\n}\n"},
	{"lvs_method TUN type gue port N, type gre (nocsum)", "virtual_server 10.0.0.1 80 {\n lvs_method TUN type gre\n real_server 10.0.0.2 80 {\n }\n real_server 10.0.0.3 80 {\n  lvs_method TUN type gue port 6080\n }\n}\n"},
	{"lvs_method TUN type gue/gre with csum or remcsum", "virtual_server 10.0.0.1 80 {\n lvs_method TUN type gue port 6080 remcsum\n real_server 10.0.0.2 80 {\n }\n real_server 10.0.0.3 80 {\n  lvs_method TUN type gre csum\n }\n}\n"},
	{"virtual_server fwmark N", "virtual_server fwmark 1 {\n lvs_method DR\n real_server 10.0.0.2 80 {\n }\n}\n"},
	{"port 0 (every port of the address; made persistent)", "virtual_server 10.0.0.1 0 {\n lvs_method DR\n real_server 10.0.0.2 0 {\n }\n}\n"},
	{"virtual_server group NAME of addresses and ranges", "virtual_server_group G {\n 10.0.0.1 80\n 10.0.0.3-5 80\n}\nvirtual_server group G {\n lvs_method DR\n real_server 10.0.0.2 80 {\n }\n}\n"},
	{"virtual_server group NAME with fwmark entries", "virtual_server_group G {\n fwmark 1\n}\nvirtual_server group G {\n lvs_method DR\n real_server 10.0.0.2 80 {\n }\n}\n"},
	{"persistence_timeout, persistence_granularity", "virtual_server 10.0.0.1 80 {\n persistence_timeout 60\n persistence_granularity 255.255.255.0\n real_server 10.0.0.2 80 {\n }\n}\n"},
	{"ops (one-packet scheduling, UDP)", "virtual_server 10.0.0.1 53 {\n protocol UDP\n ops\n real_server 10.0.0.2 53 {\n }\n}\n"},
	{"uthreshold, lthreshold", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n uthreshold 100\n lthreshold 10\n }\n}\n"},
	{"lvs_method FNAT with laddr_group_name (FULLNAT, DPVS's keepalived), toa", "local_address_group L {\n 10.0.0.50\n}\nvirtual_server 10.0.0.1 80 {\n protocol TCP\n lvs_method FNAT\n laddr_group_name L\n toa\n real_server 10.0.0.2 8080 {\n }\n}\n"},
	{"IPv4 real_server of an IPv6 virtual_server, lvs_method FNAT (NAT64, DPVS's), toa", "local_address_group L {\n 10.0.0.50\n}\nvirtual_server 2001:db8::1 80 {\n protocol TCP\n lvs_method FNAT\n laddr_group_name L\n toa\n real_server 10.0.0.2 8080 {\n }\n}\n"},
	{"IPv6 real_server of an IPv4 virtual_server, lvs_method FNAT (NAT46)", "local_address_group L {\n 2001:db8::50\n}\nvirtual_server 10.0.0.1 80 {\n protocol TCP\n lvs_method FNAT\n laddr_group_name L\n real_server 2001:db8::2 8080 {\n }\n}\n"},
	{"IPv6 real_server of an IPv4 virtual_server, lvs_method FNAT, toa", "local_address_group L {\n 2001:db8::50\n}\nvirtual_server 10.0.0.1 80 {\n protocol TCP\n lvs_method FNAT\n laddr_group_name L\n toa\n real_server 2001:db8::2 8080 {\n }\n}\n"},
}

// generate is the part of README.md between the markers.
func generate() (string, error) {
	var b strings.Builder
	b.WriteString("<!-- Written by `make readme` (go run ./tools/kwtable -w README.md) from pkg/config and the data planes' Caps; edits here are lost. -->\n\n")
	b.WriteString("**runs**: xlb reads the keyword and does what keepalived 2.2.7 does with it (where keepalived\n")
	b.WriteString("ignores a value, or the keyword, xlb ignores it too, with a warning); **refuses**: `xlb check`\n")
	b.WriteString("names the line and `xlb run` will not load the file on that data plane (`--dataplane auto`\n")
	b.WriteString("picks IPVS for what only IPVS serves); **ignored, warns**: not implemented, read past with a\n")
	b.WriteString("warning \"unlike keepalived\" (`--strict` makes it an error); **by value**: see the last table.\n")

	probes := probes()
	uses := config.KeywordUses()
	byBlock := map[string][]config.KeywordUse{}
	for _, u := range uses {
		byBlock[u.Block] = append(byBlock[u.Block], u)
	}
	order := blocks
	var rest []string
	for name := range byBlock {
		if !slices.ContainsFunc(blocks, func(x struct{ name, title string }) bool { return x.name == name }) {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	for _, name := range rest {
		order = append(order, struct{ name, title string }{name, name})
	}
	// Blocks whose tables would be the same share one (the checkers
	// mostly have the same keywords), at the first one's place.
	type table struct {
		titles  []string
		n, impl int
		rows    string
	}
	var tables []*table
	byRows := map[string]*table{}
	total, implemented := 0, 0
	for _, blk := range order {
		us := byBlock[blk.name]
		if len(us) == 0 {
			continue
		}
		groups := map[verdict][]string{}
		n := 0
		for _, u := range us {
			v := keywordVerdict(u, probes)
			groups[v] = append(groups[v], u.Keyword)
			if u.Implemented {
				n++
			}
		}
		total += len(us)
		implemented += n
		var rows strings.Builder
		for _, v := range sortedVerdicts(groups) {
			fmt.Fprintf(&rows, "| %s | %s | %s |\n", v[0], v[1], strings.Join(groups[v], ", "))
		}
		if t, ok := byRows[rows.String()]; ok {
			t.titles = append(t.titles, blk.title)
			continue
		}
		t := &table{titles: []string{blk.title}, n: len(us), impl: n, rows: rows.String()}
		byRows[t.rows] = t
		tables = append(tables, t)
	}
	for _, t := range tables {
		each := ""
		if len(t.titles) > 1 {
			each = ", in each"
		}
		fmt.Fprintf(&b, "\n**%s**: %d keywords, %d implemented%s\n\n", strings.Join(t.titles, "; "), t.n, t.impl, each)
		fmt.Fprintf(&b, "| %s | %s | keywords |\n|---|---|---|\n", planes[0].name, planes[1].name)
		b.WriteString(t.rows)
	}
	fmt.Fprintf(&b, "\nIn all, %d of the %d keywords keepalived 2.2.7 accepts in these blocks (a keyword counted once in each block) are implemented.\n", implemented, total)

	// What the data planes decide by value, and by the kind of virtual
	// server.
	b.WriteString("\n**What each data plane serves** (`xlb check --dataplane xdp|ipvs` says the same, line by line)\n\n")
	fmt.Fprintf(&b, "| keepalived.conf | %s | %s |\n|---|---|---|\n", planes[0].name, planes[1].name)
	type row struct {
		keyword string
		v       verdict
	}
	var rows []row
	values := map[row][]string{}
	for _, p := range probes {
		line := strings.Join(append([]string{p.keyword + " " + p.value}, p.lines...), "\n")
		src, _, _ := config.KeywordExample("virtual_server", line)
		v, ok := judge(src, 0, "")
		if !ok {
			return "", fmt.Errorf("%s %s: the example does not read: %s", p.keyword, p.value, src)
		}
		r := row{p.keyword, v}
		if _, seen := values[r]; !seen {
			rows = append(rows, r)
		}
		name := p.value
		if len(p.lines) > 0 {
			name += " (" + strings.Join(p.lines, ", ") + ")"
		}
		values[r] = append(values[r], name)
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s %s | %s | %s |\n", r.keyword, strings.Join(values[r], ", "), r.v[0], r.v[1])
	}
	var errs []error
	for _, f := range features {
		v, ok := judge(f.src, 0, "")
		if !ok {
			errs = append(errs, fmt.Errorf("%s: the example does not read:\n%s", f.what, f.src))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", f.what, v[0], v[1])
	}
	return b.String(), errors.Join(errs...)
}

// sortedVerdicts orders a table's rows: runs first, ignored last.
func sortedVerdicts(groups map[verdict][]string) []verdict {
	var vs []verdict
	for v := range groups {
		vs = append(vs, v)
	}
	slices.SortFunc(vs, func(a, b verdict) int {
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		return int(a[1]) - int(b[1])
	})
	return vs
}
