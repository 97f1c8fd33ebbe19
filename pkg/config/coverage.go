package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// contextWrap puts a line in each block the keyword table (keywords.go)
// covers: the text before and after it. Each wrap is a configuration xlb
// reads without an error as it stands (a virtual server with a real, an
// instance with its router id, interface and address), with what some
// keywords act on (a sorry_server for sorry_server_lvs_method), so that
// what a line changes can be seen in what is read, and in what a data
// plane makes of it (see KeywordExample).
var contextWrap = map[string][2]string{
	ctxTop:           {"", ""},
	ctxGlobal:        {"global_defs {\n", "}\n"},
	ctxScript:        {"vrrp_script s {\n script /bin/true\n", "}\n"},
	ctxTrackFile:     {"track_file f {\n file /f\n", "}\n"},
	ctxInstance:      {instanceHead("V", 1), "}\n"},
	ctxAuth:          {instanceHead("V", 1) + " authentication {\n", "}\n}\n"},
	ctxSyncGroup:     {instanceHead("V", 1) + "}\n" + instanceHead("W", 2) + "}\nvrrp_sync_group G {\n group {\n V\n W\n }\n", "}\n"},
	ctxVirtualServer: {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n }\n sorry_server 10.0.0.9 80\n", "}\n"},
	ctxRealServer:    {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n", "}\n}\n"},
	ctxURL:           {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n HTTP_GET {\n url {\n path /\n", "}\n}\n}\n}\n"},
	ctxTCPCheck:      {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n TCP_CHECK {\n", "}\n}\n}\n"},
	ctxHTTPGet:       {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n HTTP_GET {\n url {\n path /\n }\n", "}\n}\n}\n"},
	ctxSSLGet:        {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n SSL_GET {\n url {\n path /\n }\n", "}\n}\n}\n"},
	ctxMiscCheck:     {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n MISC_CHECK {\n misc_path /bin/true\n", "}\n}\n}\n"},
	ctxDNSCheck:      {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n DNS_CHECK {\n", "}\n}\n}\n"},
	ctxSMTPCheck:     {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n SMTP_CHECK {\n", "}\n}\n}\n"},
	ctxSMTPHost:      {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n SMTP_CHECK {\n host {\n", "}\n}\n}\n}\n"},
	ctxUDPCheck:      {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n UDP_CHECK {\n", "}\n}\n}\n"},
	ctxPingCheck:     {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n PING_CHECK {\n", "}\n}\n}\n"},
	ctxFileCheck:     {"track_file f {\n file /f\n}\nvirtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n FILE_CHECK {\n track_file f\n", "}\n}\n}\n"},
}

// instanceHead opens a vrrp_instance that needs nothing more.
func instanceHead(name string, vrid int) string {
	return fmt.Sprintf("vrrp_instance %s {\n interface eth0\n virtual_router_id %d\n virtual_ipaddress {\n 10.0.0.%d\n }\n", name, vrid, 100+vrid)
}

// KeywordExample is a configuration with line (one or more lines) in the
// block named as keepalived's keyword table names it ("top" for the top
// level, "vrrp_instance", "real_server", "url", "HTTP_GET", ...), and
// around it what makes the configuration complete: without line xlb reads
// it without an error. at is line's first line number; ok is
// false for a block the table does not have.
func KeywordExample(block, line string) (src string, at int, ok bool) {
	wrap, ok := contextWrap[block]
	if !ok {
		return "", 0, false
	}
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	return wrap[0] + line + wrap[1], strings.Count(wrap[0], "\n") + 1, true
}

// KeywordUse is what xlb does with one keyword that keepalived 2.2.7
// accepts in one block.
type KeywordUse struct {
	// Block is the block as KeywordExample names it.
	Block   string
	Keyword string
	// Implemented: xlb reads the keyword and does what keepalived does
	// with it (which, for some values, is to ignore them with a warning,
	// as keepalived does). Otherwise xlb ignores the keyword, warning that
	// keepalived acts on it (Warning.Unlike): "keepalived keyword not
	// implemented by xlb, ignored".
	Implemented bool
}

// keywordForms are the ways a keyword is tried: alone, with a value, with
// a block.
func keywordForms(kw string) []string {
	return []string{kw, kw + " 1", kw + " {\n}"}
}

// KeywordUses says, for every keyword of every block in keepalived
// 2.2.7's keyword table, whether xlb implements it, by reading it as xlb
// reads any file: each keyword is put in its block of a KeywordExample,
// alone, with a value and with a block, and is not implemented when one
// of them draws a warning about the keyword marked Warning.Unlike. Sorted
// by block, then keyword.
func KeywordUses() []KeywordUse {
	var out []KeywordUse
	for _, block := range slices.Sorted(maps.Keys(keepalivedKeywords)) {
		for _, kw := range slices.Sorted(slices.Values(keepalivedKeywords[block])) {
			out = append(out, KeywordUse{Block: block, Keyword: kw, Implemented: !unlikeKeyword(block, kw)})
		}
	}
	return out
}

// unlikeKeyword reports whether a form of kw in block draws a warning that
// xlb does not do what keepalived does with it.
func unlikeKeyword(block, kw string) bool {
	for _, form := range keywordForms(kw) {
		src, at, ok := KeywordExample(block, form)
		if !ok {
			return false
		}
		_, p := parseProblems(memSource{"keepalived.conf": src}, "keepalived.conf", src, Options{ConfigID: "example"})
		for _, w := range p.warns {
			if w.Unlike && w.Word == kw && w.Line == at {
				return true
			}
		}
	}
	return false
}
