package config

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkersOf parses one real server (rs25) with body, after before, and
// returns its checkers.
func checkersOf(t *testing.T, before, body string) []Checker {
	t.Helper()
	cfg := mustParse(t, before+rs25(body))
	require.Len(t, cfg.VirtualServers, 1)
	return cfg.VirtualServers[0].Reals[0].Checkers
}

// problemsOf parses src and returns its errors, or its warnings if it has
// none, as "line: message" strings.
func problemsOf(t *testing.T, src string) []string {
	t.Helper()
	cfg, err := parseFiles(map[string]string{"keepalived.conf": src})
	var out []string
	if err != nil {
		for _, e := range parseErrors(t, src) {
			out = append(out, e.Error())
		}
		return out
	}
	return warningStrings(cfg)
}

// rs25 is a real server 10.0.0.2 port 25 with body, its checkers' lines
// from line 6, in a virtual server on port 25.
func rs25(body string) string {
	return "virtual_server 10.0.0.1 25 {\n protocol TCP\n lb_algo rr\n lb_kind DR\n real_server 10.0.0.2 25 {\n" + body + "\n }\n}\n"
}

func TestSMTPCheckDefaults(t *testing.T) {
	cs := checkersOf(t, "", "  SMTP_CHECK {\n  }")
	require.Len(t, cs, 1)
	c := cs[0]
	assert.Equal(t, SMTPCheck, c.Kind)
	assert.Equal(t, "smtpchecker.keepalived.org", c.HeloName, "keepalived's SMTP_DEFAULT_HELO")
	assert.Equal(t, netip.MustParseAddr("10.0.0.2"), c.ConnectIP)
	assert.Equal(t, uint16(25), c.ConnectPort, "the real server's port, as keepalived 2.2.7 defaults it")
	assert.Equal(t, 1, c.Retry)
	assert.Equal(t, time.Second, c.DelayBeforeRetry)
	assert.Equal(t, 5*time.Second, c.ConnectTimeout)
	assert.Equal(t, 60*time.Second, c.DelayLoop)
}

func TestSMTPCheckHosts(t *testing.T) {
	addrs := func(cs []Checker) []string {
		var out []string
		for _, c := range cs {
			out = append(out, netip.AddrPortFrom(c.ConnectIP, c.ConnectPort).String()+" "+c.ConnectTimeout.String())
		}
		return out
	}
	t.Run("a connection option of its own keeps the block's checker", func(t *testing.T) {
		// keepalived's sample: connect_timeout makes the block a checker
		// too, so 10.0.0.2 is checked twice.
		cs := checkersOf(t, "", lines(
			"  SMTP_CHECK {",
			"   connect_timeout 10",
			"   retry 2",
			"   delay_before_retry 5",
			"   helo_name foo.bar.com",
			"   host {\n    connect_ip 10.0.0.2\n   }",
			"   host {\n    connect_ip 192.168.155.10\n    connect_port 2525\n    connect_timeout 3\n   }",
			"   host {\n    connect_ip 64.233.167.99\n    bindto 10.0.0.9\n   }",
			"  }"))
		assert.Equal(t, []string{"10.0.0.2:25 10s", "10.0.0.2:25 10s", "192.168.155.10:2525 3s", "64.233.167.99:25 10s"}, addrs(cs))
		for _, c := range cs {
			assert.Equal(t, "foo.bar.com", c.HeloName)
			assert.Equal(t, 2, c.Retry)
			assert.Equal(t, 5*time.Second, c.DelayBeforeRetry)
		}
		assert.Equal(t, netip.MustParseAddr("10.0.0.9"), cs[3].BindTo)
		assert.Equal(t, 11, cs[1].Pos.Line, "each host's checker is where its block is")
	})
	t.Run("hosts alone replace the block's connection", func(t *testing.T) {
		cs := checkersOf(t, "", lines(
			"  SMTP_CHECK {",
			"   host {\n    connect_ip 10.0.0.7\n    retry 4\n   }",
			"   host {\n    connect_port 587\n   }",
			"  }"))
		assert.Equal(t, []string{"10.0.0.7:25 5s", "10.0.0.2:587 5s"}, addrs(cs))
		for _, c := range cs {
			assert.Equal(t, 4, c.Retry, "a host's retry is the whole checker's, as in keepalived")
		}
	})
}

func TestUDPCheckConfig(t *testing.T) {
	cs := checkersOf(t, "", "  UDP_CHECK {\n  }")
	require.Len(t, cs, 1)
	assert.Equal(t, UDPCheck, cs[0].Kind)
	assert.Nil(t, cs[0].Payload, "keepalived's default payload")
	assert.False(t, cs[0].RequireReply)
	assert.Equal(t, 0, cs[0].MinReplyLength)
	assert.Equal(t, 255, cs[0].MaxReplyLength)
	assert.Equal(t, 1, cs[0].Retry)

	cs = checkersOf(t, "", lines("  UDP_CHECK {",
		"   payload Ab12f 3 456 546443123", // keepalived.conf(5)'s example
		"   require_reply 0x 12 Xa",
		"   min_reply_length 2",
		"   max_reply_length 100",
		"  }"))
	c := cs[0]
	assert.Equal(t, []byte{0xab, 0x12, 0x0f, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03}, c.Payload)
	assert.True(t, c.RequireReply)
	assert.Equal(t, []byte{0x00, 0x12, 0x0a}, c.ReplyData)
	assert.Equal(t, []byte{0x0f, 0x00, 0xf0}, c.ReplyMask)
	assert.Equal(t, 2, c.MinReplyLength)
	assert.Equal(t, 100, c.MaxReplyLength)

	c = checkersOf(t, "", "  UDP_CHECK {\n   require_reply\n  }")[0]
	assert.True(t, c.RequireReply)
	assert.Nil(t, c.ReplyData, "any reply")
}

func TestPingCheckConfig(t *testing.T) {
	c := checkersOf(t, "", "  PING_CHECK {\n   connect_ip 10.0.0.8\n   connect_timeout 2\n  }")[0]
	assert.Equal(t, PingCheck, c.Kind)
	assert.Equal(t, netip.MustParseAddr("10.0.0.8"), c.ConnectIP)
	assert.Equal(t, 2*time.Second, c.ConnectTimeout)
	assert.Equal(t, 1, c.Retry)
}

func TestFileCheckConfig(t *testing.T) {
	tf := "track_file ready {\n file /run/ready\n weight 3 reverse\n}\n"
	c := checkersOf(t, tf, "  FILE_CHECK {\n   track_file ready\n  }")[0]
	assert.Equal(t, Checker{Kind: FileCheck, TrackFile: "ready", TrackFilePath: "/run/ready", FileWeight: 3, FileReverse: true,
		Pos: Pos{"keepalived.conf", 10}}, c, "the track_file's weight and reverse; no timing of its own")

	c = checkersOf(t, tf, "  FILE_CHECK {\n   track_file ready\n   weight -2147483647\n  }")[0]
	assert.Equal(t, -2147483647, c.FileWeight)
	assert.False(t, c.FileReverse, "the entry's weight line sets reverse too")

	c = checkersOf(t, "track_file t {\n file /t\n}\n", "  FILE_CHECK {\n   track_file t\n  }")[0]
	assert.Equal(t, 1, c.FileWeight, "a track_file's weight is 1 unless set")

	c = checkersOf(t, tf, "  FILE_CHECK {\n   track_file ready\n   weight 0 noreverse\n  }")[0]
	assert.Equal(t, 0, c.FileWeight)
	assert.False(t, c.FileReverse)
}

func TestCheckerProblems(t *testing.T) {
	tf := "track_file ready {\n file /run/ready\n}\n"
	for _, tc := range []struct {
		name, src, want string
	}{
		{"helo_name without a name", rs25("  SMTP_CHECK {\n   helo_name\n  }"), `keepalived.conf:7: missing value after "helo_name"`},
		{"host connect_ip", rs25("  SMTP_CHECK {\n   host {\n    connect_ip mx\n   }\n  }"), `keepalived.conf:8: connect_ip: not an IP address: "mx"`},
		{"host connect_port", rs25("  SMTP_CHECK {\n   host {\n    connect_port 0\n   }\n  }"), `keepalived.conf:8: connect_port must be an integer in [1, 65535], got "0"`},
		{"keyword not of a host", rs25("  SMTP_CHECK {\n   host {\n    helo_name x\n   }\n  }"), `keepalived.conf:8: unknown keyword in host`},
		{"payload not hex", rs25("  UDP_CHECK {\n   payload 12 zz\n  }"), `keepalived.conf:7: UDP_CHECK payload is not a hex string (keepalived sends its default payload): "12 zz": ignored, as keepalived ignores it`},
		{"payload wildcard", rs25("  UDP_CHECK {\n   payload 1x\n  }"), `keepalived.conf:7: UDP_CHECK payload is not a hex string`},
		{"payload ending in FF", rs25("  UDP_CHECK {\n   payload 01 ff\n  }"), `keepalived.conf:7: keepalived 2.2.7 refuses a payload ending in byte FF and sends its default payload; xlb sends this one: "ff"`},
		{"reply not hex", rs25("  UDP_CHECK {\n   require_reply g0\n  }"), `keepalived.conf:7: UDP_CHECK require_reply pattern is not a hex string (any reply will do): "g0"`},
		{"max_reply_length", rs25("  UDP_CHECK {\n   max_reply_length 65536\n  }"), `keepalived.conf:7: max_reply_length must be an integer in [0, 65535], got "65536"`},
		{"min above max", rs25("  UDP_CHECK {\n   min_reply_length 9\n   max_reply_length 3\n  }"), `keepalived.conf:6: min_reply_length 9 > max_reply_length 3: every reply fails the pattern in "UDP_CHECK"`},
		{"ping bindto", rs25("  PING_CHECK {\n   bindto 10.0.0.1\n  }"), `keepalived.conf:7: PING_CHECK does not use it (keepalived neither: it pings from an unbound socket), ignored: "bindto"`},
		{"file: no track_file", rs25("  FILE_CHECK {\n  }"), `keepalived.conf:6: no track_file in this FILE_CHECK, so it checks nothing: "FILE_CHECK"`},
		{"file: unknown track_file", rs25("  FILE_CHECK {\n   track_file nope\n  }"), `keepalived.conf:7: FILE_CHECK track_file not found (it must be defined above the FILE_CHECK): "nope"`},
		{"file: track_file defined below", rs25("  FILE_CHECK {\n   track_file ready\n  }") + tf, `keepalived.conf:7: FILE_CHECK track_file not found`},
		{"file: weight too big", tf + rs25("  FILE_CHECK {\n   track_file ready\n   weight 2147483648\n  }"), `keepalived.conf:11: weight must be an integer in [-2147483647, 2147483647], got "2147483648"`},
		{"file: weight option", tf + rs25("  FILE_CHECK {\n   track_file ready\n   weight 2 backwards\n  }"), `keepalived.conf:11: FILE_CHECK weight takes reverse or noreverse after the value; the weight line is "backwards"`},
		{"file: timing is not its", tf + rs25("  FILE_CHECK {\n   track_file ready\n   retry 3\n  }"), `keepalived.conf:11: unknown keyword in FILE_CHECK: "retry": ignored, as keepalived ignores it`},
		{"file: dynamic (in the manual, not in 2.2.7)", tf + rs25("  FILE_CHECK {\n   track_file ready\n   dynamic\n  }"), `keepalived.conf:11: unknown keyword in FILE_CHECK`},
		{"BFD alone", rs25("  BFD_CHECK {\n   name b\n  }"), `keepalived.conf:6: checker not implemented by xlb, ignored: BFD will never take this real server down, and with no other checker it is always up: "BFD_CHECK"`},
		{"BFD with another checker", rs25("  BFD_CHECK {\n   name b\n  }\n  TCP_CHECK {\n  }"), `keepalived.conf:6: checker not implemented by xlb, ignored: BFD will never take this real server down (its other checkers still do): "BFD_CHECK"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problemsOf(t, tc.src)
			require.NotEmpty(t, got, tc.src)
			assert.True(t, strings.HasPrefix(got[0], tc.want), "got %q\nwant %q...", got, tc.want)
		})
	}
}

// urlOf parses an HTTP_GET url block with body and returns its url.
func urlOf(t *testing.T, body string) URL {
	t.Helper()
	cs := checkersOf(t, "", "  HTTP_GET {\n   url {\n    path /\n"+body+"\n   }\n  }")
	require.Len(t, cs[0].URLs, 1)
	return cs[0].URLs[0]
}

func TestURLRegexConfig(t *testing.T) {
	u := urlOf(t, `    regex "state: (ready|up)"`)
	require.NotNil(t, u.Regex)
	assert.Equal(t, &URLRegex{Pattern: "state: (ready|up)", RE2: `state: (ready|up)`, MaxOffset: -1}, u.Regex)
	assert.Nil(t, urlOf(t, "").Regex)

	u = urlOf(t, lines(`    regex "^OK\\d+$"`, "    regex_no_match", "    regex_options caseless multiline caseless firstline",
		"    regex_min_offset 4", "    regex_max_offset 100"))
	assert.Equal(t, `^OK\d+$`, u.Regex.Pattern, `keepalived decodes \\ to \ before PCRE2 sees the pattern`)
	assert.Equal(t, []string{"caseless", "multiline", "firstline"}, u.Regex.Options)
	assert.True(t, u.Regex.NoMatch)
	assert.True(t, u.Regex.FirstLine)
	assert.Equal(t, int64(4), u.Regex.MinOffset)
	assert.Equal(t, int64(100), u.Regex.MaxOffset)
	re := regexp.MustCompile(u.Regex.RE2)
	assert.True(t, re.MatchString("x\nok42\ny"), "caseless and multiline: %s", u.Regex.RE2)
}

func TestPCREToRE2(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		options []string
		match   []string
		noMatch []string
	}{
		{`ok$`, nil, []string{"ok", "ok\n", "all ok\n"}, []string{"ok\n\n", "okay"}},
		{`ok$`, []string{"dollar_endonly"}, []string{"ok"}, []string{"ok\n"}},
		{`(?m)^ok$`, nil, []string{"a\nok\nb"}, []string{"a\nokay"}},
		{`^ok$`, []string{"multiline"}, []string{"a\nok\nb"}, []string{"a okay"}},
		{`OK`, []string{"caseless"}, []string{"ok"}, []string{"o k"}},
		{`a.b`, []string{"dotall"}, []string{"a\nb"}, []string{"ab"}},
		{`a.b`, nil, []string{"axb"}, []string{"a\nb"}},
		{`<(.+)>`, []string{"ungreedy"}, []string{"<a>"}, nil},
		{`\d{3} (?<word>\w+)`, nil, []string{"200 OK"}, []string{"20 OK"}},
	} {
		re2, err := pcreToRE2(tc.pattern, tc.options)
		require.NoError(t, err, tc.pattern)
		re := regexp.MustCompile(re2)
		for _, s := range tc.match {
			assert.True(t, re.MatchString(s), "%s %v (as %s) should match %q", tc.pattern, tc.options, re2, s)
		}
		for _, s := range tc.noMatch {
			assert.False(t, re.MatchString(s), "%s %v (as %s) should not match %q", tc.pattern, tc.options, re2, s)
		}
	}
	re2, err := pcreToRE2(`<(.+)>`, []string{"ungreedy"})
	require.NoError(t, err)
	assert.Equal(t, []string{"<a>", "a"}, regexp.MustCompile(re2).FindStringSubmatch("<a><b>"), "ungreedy: .+ takes as little as it can")
}

func TestURLRegexProblems(t *testing.T) {
	url := func(body string) string {
		return rs25("  HTTP_GET {\n   url {\n    path /\n" + body + "\n   }\n  }")
	}
	for _, tc := range []struct {
		name, src, want string
	}{
		{"lookahead", url(`    regex "ok(?=\\n)"`), `keepalived.conf:9: regex cannot run on Go's RE2 engine (error parsing regexp: invalid or unsupported Perl syntax: ` + "`(?=`" + `): PCRE2-only syntax or no valid pattern, and xlb will not run a different check than keepalived's: "ok(?=\\n)"`},
		{"backreference", url(`    regex "(a)\\1"`), `keepalived.conf:9: regex cannot run on Go's RE2 engine (error parsing regexp: invalid escape sequence: ` + "`\\1`"},
		{"possessive", url(`    regex "a++"`), `keepalived.conf:9: regex cannot run on Go's RE2 engine`},
		{`\Z`, url(`    regex "ok\\Z"`), `keepalived.conf:9: regex cannot run on Go's RE2 engine`},
		{`\v`, url(`    regex "a\\vb"`), `keepalived.conf:9: regex cannot run on Go's RE2 engine (PCRE's \v and \V (vertical space) mean something else in RE2)`},
		{"not a pattern", url(`    regex "(ok"`), `keepalived.conf:9: regex cannot run on Go's RE2 engine (error parsing regexp: missing closing )`},
		{"extended", url("    regex ok\n    regex_options extended"), `keepalived.conf:10: regex option not supported by xlb (RE2 has no extended mode (whitespace and # comments in the pattern)): "extended"`},
		{"ucp", url("    regex ok\n    regex_options ucp"), `keepalived.conf:10: regex option not supported by xlb (RE2's \d, \w, \s and \b are ASCII only): "ucp"`},
		{"unknown option", url("    regex ok\n    regex_options sideways"), `keepalived.conf:10: unknown regex option "sideways": ignored, as keepalived ignores it`},
		{"two patterns", url("    regex ok fine"), `keepalived.conf:9: regex takes one pattern (quote it if it has blanks): "regex": ignored, as keepalived ignores it`},
		{"bad offset", url("    regex ok\n    regex_max_offset -1"), `keepalived.conf:10: regex_max_offset must be a byte offset (a whole number), got "-1"`},
		{"min past max", url("    regex ok\n    regex_min_offset 9\n    regex_max_offset 3"), `keepalived.conf:10: regex_min_offset 9 is past regex_max_offset 3; both are "regex_min_offset": ignored, as keepalived ignores it`},
		{"settings without a regex", url("    regex_no_match"), `keepalived.conf:9: regex settings without a regex in this url: "regex_no_match": ignored, as keepalived ignores it`},
		{`one backslash`, url(`    regex "code \d+"`), `keepalived.conf:9: keepalived decodes the regex line's escapes before PCRE2 sees it, so this reaches it as "d"; write \\d for the PCRE escape: "\\d"`},
		{`escaped dot`, url(`    regex www\.example\.org`), `keepalived.conf:9: keepalived decodes the regex line's escapes before PCRE2 sees it, so this reaches it as "."; write \\. for the PCRE escape: "\\."`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problemsOf(t, tc.src)
			require.NotEmpty(t, got, tc.src)
			assert.True(t, strings.HasPrefix(got[0], tc.want), "got  %q\nwant %q...", got[0], tc.want)
		})
	}
}

func TestCheckersRoundTrip(t *testing.T) {
	tf := "track_file ready {\n file /run/ready\n weight 3 reverse\n}\n"
	for _, src := range []string{
		tf + rs25("  FILE_CHECK {\n   track_file ready\n  }\n  FILE_CHECK {\n   track_file ready\n   weight -7\n  }"),
		rs25("  SMTP_CHECK {\n   helo_name \"a b\"\n   host {\n    connect_ip 10.0.0.7\n    connect_timeout 2\n   }\n   host {\n    connect_port 587\n   }\n  }"),
		rs25("  UDP_CHECK {\n   payload de ad be ef ff\n   require_reply 0x 12 Xa\n   max_reply_length 0\n  }\n  UDP_CHECK {\n   require_reply\n  }"),
		rs25("  PING_CHECK {\n   connect_ip fd00::1\n  }"),
		rs25("  HTTP_GET {\n   url {\n    path /\n    regex \"a{2} #!\\\\d 'x' \\\"y\\\"\"\n    regex_options caseless firstline\n    regex_no_match\n    regex_min_offset 3\n    regex_max_offset 9\n   }\n  }"),
		rs25("  HTTP_GET {\n   url {\n    path /\n    regex \\001\\n\\t\n   }\n  }"),
	} {
		t.Run("", func(t *testing.T) {
			_, err := parseFiles(map[string]string{"keepalived.conf": src})
			require.NoError(t, err, src)
			requireRoundTrip(t, "keepalived.conf", []byte(src))
		})
	}
}
