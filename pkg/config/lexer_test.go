package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecomment(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  router_id LB1  ", "router_id LB1"},
		{"router_id LB1 # comment", "router_id LB1"},
		{"router_id LB1 ! comment", "router_id LB1"},
		{"! whole line", ""},
		{"#", ""},
		{`script "/bin/x # not a comment" # a comment`, `script "/bin/x # not a comment"`},
		{`router_id a\#b`, "router_id a#b"},
		{`router_id a\!b`, "router_id a!b"},
		{`script "a\#b"`, `script "a\#b"`}, // quoted: left alone
		{`path /a\b`, `path /a\b`},
		{`script 'x # y'`, `script 'x`}, // single quotes do not protect comments
	} {
		got, err := decomment(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	_, err := decomment(`script "unterminated`)
	assert.Error(t, err)
}

// The lexer's hand-written scans say what the strings functions they
// replace say: trimBlanks is strings.Trim of keepalived's blanks,
// hasCommentOrQuote strings.ContainsAny, and include's test that a line
// starts with "include" holds for every include keyword.
func TestLexerScans(t *testing.T) {
	var bytes []byte
	for c := range 256 {
		bytes = append(bytes, byte(c))
	}
	for _, s := range []string{"", " ", "\t\f\v\r\n", " a ", "\ta b\n", "\xa0x\xa0", " \xc2\xa0 ", "x", string(bytes), "# c", `a "b" c`, `\!`} {
		assert.Equal(t, strings.Trim(s, " \t\f\v\r\n"), trimBlanks(s), "%q", s)
		assert.Equal(t, strings.ContainsAny(s, "\"\\#!"), hasCommentOrQuote(s), "%q", s)
	}
	for c := range 256 {
		s := "a" + string(rune(c)) + "b"
		if c >= 0x80 {
			s = "a" + string([]byte{byte(c)}) + "b"
		}
		assert.Equal(t, strings.ContainsAny(s, "\"\\#!"), hasCommentOrQuote(s), "%q", s)
		assert.Equal(t, strings.Trim(s[1:2], " \t\f\v\r\n"), trimBlanks(s[1:2]), "%q", s)
	}
	for kw := range includeKeywords {
		assert.True(t, strings.HasPrefix(kw, "include"), kw)
	}
}

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"a b\tc", []string{"a", "b", "c"}},
		{`notify "/bin/x a  b" root`, []string{"notify", "/bin/x a  b", "root"}},
		{`a"b c"`, []string{"a", "b c"}},
		{`""`, []string{""}},
		{`'a b'`, []string{"'a", "b'"}}, // single quotes are plain characters here
	} {
		got, err := splitWords(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	_, err := splitWords(`a "b`)
	assert.Error(t, err)
}

func TestSplitShell(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		// The man page's examples.
		{`abcd" efg h jkl "mnop`, []string{"abcd efg h jkl mnop"}},
		{`abcd "efg h jkl" mnop`, []string{"abcd", "efg h jkl", "mnop"}},
		{`bash -c '</dev/tcp/127.0.0.1/80'`, []string{"bash", "-c", "</dev/tcp/127.0.0.1/80"}},
		{`a\ b`, []string{"a b"}},
		{`"a\"b"`, []string{`a"b`}},
		{`'it\'s'`, []string{"it's"}},
		{`\t\n\x41\101\cA\E\q`, []string{"\t\nAA\x01\x1bq"}},
		{`\0411`, []string{"!1"}}, // at most three octal digits
		{`''`, []string{""}},
		{"  ", nil},
	} {
		got, err := splitShell(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{`'abc`, `"abc`, `abc\`} {
		_, err := splitShell(bad)
		assert.Error(t, err, bad)
	}
}

func TestExpandBraces(t *testing.T) {
	assert.Equal(t, []string{"a.conf"}, expandBraces("a.conf"))
	assert.Equal(t, []string{"/e/a.conf", "/e/b.conf"}, expandBraces("/e/{a,b}.conf"))
	assert.Equal(t, []string{"foo/x", "foo/cat", "foo/dog", "bar"}, expandBraces("{foo/{x,cat,dog},bar}"))
	assert.Equal(t, []string{"a{b"}, expandBraces("a{b"))
}

func TestOneLineBlocks(t *testing.T) {
	cfg := mustParse(t, lines(
		`virtual_server 10.0.0.1 80 { protocol TCP`,
		`  lb_algo rr }`,
		`virtual_server 10.0.0.1 81 {`,
		` protocol TCP`,
		` real_server 10.0.0.3 81 { weight 7 }`,
		` real_server 10.0.0.4 81`,
		` {`,
		`   weight 2`,
		`   TCP_CHECK { connect_timeout 2 }`,
		` }`,
		`}`,
	))
	// The first virtual server has no real server: dropped with a warning.
	require.Len(t, cfg.VirtualServers, 1)
	vs := cfg.VirtualServers[0]
	require.Len(t, vs.Reals, 2)
	assert.Equal(t, 7, vs.Reals[0].Weight)
	assert.Equal(t, 2, vs.Reals[1].Weight)
	assert.Equal(t, 2*time.Second, vs.Reals[1].Checkers[0].ConnectTimeout)
	assert.Contains(t, warningStrings(cfg), `keepalived.conf:1: virtual server has no real_server; ignoring "10.0.0.1"`)
}

func TestInclude(t *testing.T) {
	files := map[string]string{
		"keepalived.conf": lines(
			"global_defs {",
			"  include globals.inc",
			"}",
			"include conf.d/*.conf",
			"include {x,y}.conf", // braces in an include line are a glob, not a block
		),
		"globals.inc": "router_id FROM_INCLUDE\n",
		"conf.d/b.conf": lines(
			"virtual_server 10.0.0.1 80 {",
			"  protocol TCP",
			"  include reals.inc", // relative to conf.d/, the including file's directory
			"}",
		),
		"conf.d/a.conf":    "vrrp_script chk { script /bin/true }\n",
		"conf.d/reals.inc": "real_server 10.0.0.2 80 {\n weight 5\n}\n",
		"reals.inc":        "this file must not be read\n",
		"x.conf":           "vrrp_script x { script /bin/x }\n",
		"y.conf":           "vrrp_script y { script /bin/y }\n",
	}
	cfg, err := parseFiles(files)
	require.NoError(t, err)
	assert.Equal(t, "FROM_INCLUDE", cfg.Global.RouterID)
	require.Len(t, cfg.Scripts, 3)
	// Glob matches are read in sorted order.
	assert.Equal(t, []string{"chk", "x", "y"}, []string{cfg.Scripts[0].Name, cfg.Scripts[1].Name, cfg.Scripts[2].Name})
	assert.Equal(t, Pos{"conf.d/a.conf", 1}, cfg.Scripts[0].Pos)
	require.Len(t, cfg.VirtualServers, 1)
	assert.Equal(t, 5, cfg.VirtualServers[0].Reals[0].Weight)
	assert.Equal(t, Pos{"conf.d/reals.inc", 1}, cfg.VirtualServers[0].Reals[0].Pos)
}

func TestIncludeProblems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		err   string // first error, or "" for success
		warn  string // a warning expected on success
	}{{
		name:  "no match is a warning for include",
		files: map[string]string{"keepalived.conf": "include conf.d/*.conf\n"},
		warn:  `keepalived.conf:1: no file matches "conf.d/*.conf"`,
	}, {
		name:  "no match is an error for includew",
		files: map[string]string{"keepalived.conf": "includew conf.d/*.conf\n"},
		err:   `keepalived.conf:1: no file matches "conf.d/*.conf"`,
	}, {
		name:  "includem allows an empty wildcard",
		files: map[string]string{"keepalived.conf": "includem conf.d/*.conf\n"},
		warn:  `keepalived.conf:1: no file matches "conf.d/*.conf"`,
	}, {
		name:  "includem needs a plain name to exist",
		files: map[string]string{"keepalived.conf": "includem conf.d/x.conf\n"},
		err:   `keepalived.conf:1: no file matches "conf.d/x.conf"`,
	}, {
		name: "loop",
		files: map[string]string{
			"keepalived.conf": "include a.conf\n",
			"a.conf":          "\n\ninclude keepalived.conf\n",
		},
		err: `a.conf:3: include loop (keepalived.conf -> a.conf -> keepalived.conf) at "keepalived.conf"`,
	}, {
		name:  "self include",
		files: map[string]string{"keepalived.conf": "include *.conf\n"},
		err:   `keepalived.conf:1: include loop (keepalived.conf -> keepalived.conf) at "*.conf"`,
	}, {
		name:  "two names",
		files: map[string]string{"keepalived.conf": "include a b\n"},
		err:   `keepalived.conf:1: include takes exactly one file name (a glob): "include"`,
	}, {
		name: "block left open in an included file",
		files: map[string]string{
			"keepalived.conf": "include a.conf\n}\n",
			"a.conf":          "global_defs {\n router_id x\n",
		},
		err: `a.conf:1: missing "}" for the block of "global_defs"`,
	}, {
		name: "closing the includer's block",
		files: map[string]string{
			"keepalived.conf": "global_defs {\ninclude a.conf\n",
			"a.conf":          "router_id x\n}\n",
		},
		err: `a.conf:2: closes no block opened in this file: "}"`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseFiles(tc.files)
			if tc.err != "" {
				require.Error(t, err)
				var list ErrorList
				require.True(t, errors.As(err, &list))
				assert.Equal(t, tc.err, list[0].Error())
				return
			}
			require.NoError(t, err)
			assert.Contains(t, warningStrings(cfg), tc.warn)
		})
	}
}

func TestIncludeLoopSentinel(t *testing.T) {
	_, err := parseFiles(map[string]string{"keepalived.conf": "include keepalived.conf\n"})
	assert.ErrorIs(t, err, ErrIncludeLoop)
}

// TestParseFromDisk reads real files: relative includes resolve against the
// including file's directory, not the working directory, and keepalived's
// rule of reading only non-executable regular files holds.
func TestParseFromDisk(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), mode))
	}
	write("etc/keepalived.conf", "include conf.d/*\n", 0o644)
	write("etc/conf.d/10-global.conf", "global_defs {\n router_id DISK\n}\n", 0o644)
	write("etc/conf.d/20-script.sh", "#!/bin/sh\n", 0o755)
	write("etc/conf.d/sub/ignored.conf", "bogus\n", 0o644) // a directory match is skipped

	cfg, err := Parse(filepath.Join(dir, "etc/keepalived.conf"))
	require.NoError(t, err)
	assert.Equal(t, "DISK", cfg.Global.RouterID)
	require.Len(t, cfg.Warnings, 1)
	assert.Equal(t, filepath.Join(dir, "etc/conf.d/20-script.sh"), cfg.Warnings[0].Word)
	assert.Contains(t, cfg.Warnings[0].Msg, "not a regular non-executable file")

	_, err = Parse(filepath.Join(dir, "missing.conf"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestConditionalLines: "@id line" is read only with config id id,
// "@^id line" only without it; the config id is keepalived's -i (xlb's
// --config-id), else the host name up to its first dot.
func TestConditionalLines(t *testing.T) {
	src := lines(
		"global_defs {",
		"@lb1 router_id ONE",
		"@^lb1 router_id NOT_ONE",
		"@lb1 notification_email_from one@example.com",
		"@lb2\tnotification_email_from two@example.com",
		"@lb1",
		"}",
	)
	for id, want := range map[string][2]string{
		"lb1":   {"ONE", "one@example.com"},
		"lb2":   {"NOT_ONE", "two@example.com"},
		"other": {"NOT_ONE", ""},
		"lb":    {"NOT_ONE", ""}, // a prefix is not the id
	} {
		cfg, err := parse(memSource{}, "keepalived.conf", []byte(src), Options{ConfigID: id})
		require.NoError(t, err)
		assert.Equal(t, want[0], cfg.Global.RouterID, id)
		assert.Equal(t, want[1], cfg.Global.NotificationEmailFrom, id)
		assert.Empty(t, cfg.Warnings, id)
	}

	host, err := os.Hostname()
	require.NoError(t, err)
	short, _, _ := strings.Cut(host, ".")
	require.Equal(t, short, DefaultConfigID())
	cfg, err := parse(memSource{}, "keepalived.conf", []byte("global_defs {\n@"+short+" router_id HOST\n}\n"), Options{})
	require.NoError(t, err)
	assert.Equal(t, "HOST", cfg.Global.RouterID, "without a config id, the host name is")
}

func TestParameterSubstitution(t *testing.T) {
	cfg := mustParse(t, lines(
		"$VIP=10.0.0.100",
		"$PORT = 443",
		"$ID=LB_${PORT}",
		"global_defs {",
		"  router_id ${ID}x",
		"  smtp_server $UNDEFINED",
		"}",
		"virtual_server $VIP $PORT {",
		"  protocol TCP",
		"  real_server 10.0.0.2 $PORT {",
		"  }",
		"}",
	))
	assert.Equal(t, "LB_443x", cfg.Global.RouterID)
	assert.Equal(t, "$UNDEFINED", cfg.Global.SMTPServer) // left alone, as keepalived does
	require.Len(t, cfg.VirtualServers, 1)
	assert.Equal(t, "10.0.0.100", cfg.VirtualServers[0].Addr.String())
	assert.Equal(t, uint16(443), cfg.VirtualServers[0].Port)

	// A multi-line definition, alone on a line, stands for its lines (as
	// keepalived's parser.c reads one: each "\\" ends a line of it).
	cfg = mustParse(t, lines(
		"$PORT=8500",
		"$CHECK=\\",
		"    TCP_CHECK { \\",
		"        connect_port $PORT  \\",
		"        connect_timeout 3 \\",
		"    }",
		"virtual_server 10.0.0.1 80 {",
		"  protocol TCP",
		"  real_server 10.0.0.2 80 {",
		"    $CHECK",
		"  }",
		"  real_server 10.0.0.3 80 {",
		"    ${CHECK}",
		"  }",
		"}",
	))
	require.Len(t, cfg.VirtualServers[0].Reals, 2)
	for _, rs := range cfg.VirtualServers[0].Reals {
		require.Len(t, rs.Checkers, 1, "%s", rs.Addr)
		assert.Equal(t, uint16(8500), rs.Checkers[0].ConnectPort)
		assert.Equal(t, 3*time.Second, rs.Checkers[0].ConnectTimeout)
	}
	var errs ErrorList
	errs = parseErrors(t, "$X=$X$X\nrouter_id $X\n")
	assert.Contains(t, errs[0].Msg, "parameter substitution does not terminate")
}

// TestSequences: ~SEQ as keepalived 2.2.7's add_seq reads it: the rest of
// the line once per value, with $VAR defined as the value; with a
// multi-line definition it makes blocks. keepalived -t on the same text
// reads the same vrrp_scripts (it reports each script it cannot find).
func TestSequences(t *testing.T) {
	src := lines(
		"$N=3",
		"$SCRIPT=vrrp_script chk_$i { \\",
		"   script \"/bin/true $i\" \\",
		"   weight -$i \\",
		"}",
		"~SEQ(i, $N) $SCRIPT",
		"~SEQ(j, 10, -5, 0) vrrp_script down_$j { script \"/bin/true $j\" }",
		"~SEQx(k, 9, 11) vrrp_script hex_$k { script \"/bin/true $k\" }",
		"~SEQ(m, -2) vrrp_script neg$m { script /bin/true }",
		"vrrp_instance VI_1 {",
		" interface eth0",
		" virtual_router_id 51",
		" priority 100",
		" track_script {",
		"  chk_1\n  chk_3\n  down_5\n  hex_a\n  neg-2\n  nope",
		" }",
		" virtual_ipaddress {\n  10.9.9.9\n }",
		"}",
	)
	cfg := mustParse(t, src)
	var names []string
	for _, sc := range cfg.Scripts {
		names = append(names, sc.Name+"="+strings.Join(sc.Script.Args, " "))
	}
	assert.Equal(t, []string{
		"chk_1=/bin/true 1", "chk_2=/bin/true 2", "chk_3=/bin/true 3",
		"down_10=/bin/true 10", "down_5=/bin/true 5", "down_0=/bin/true 0",
		"hex_9=/bin/true 9", "hex_a=/bin/true a", "hex_b=/bin/true b",
		"neg-1=/bin/true", "neg-2=/bin/true",
	}, names)
	assert.Equal(t, -2, cfg.Script("chk_2").Weight)
	var tracked []string
	for _, ts := range cfg.Instances[0].TrackScripts {
		tracked = append(tracked, ts.Name)
	}
	assert.Equal(t, []string{"chk_1", "chk_3", "down_5", "hex_a", "neg-2"}, tracked)
	assert.Contains(t, warningStrings(cfg), `keepalived.conf:20: (VI_1) track_script not found, ignoring: "nope"`)
	// keepalived reads the same scripts: of the six tracked, only nope
	// is not found.
	says := keepalivedSays(t, src)
	assert.Contains(t, says, "(VI_1) track script nope not found")
	for _, n := range tracked {
		assert.NotContains(t, says, "track script "+n+" not found", "keepalived made %s too", n)
	}

	errs := parseErrors(t, "~SEQ(i, 1, -1, 3) vrrp_script s$i { script x }\n")
	assert.Contains(t, errs[0].Error(), "invalid ~SEQ (the step does not lead from the start to the end)")
	errs = parseErrors(t, "~SEQ(i, 1, 100000) x$i\n")
	assert.Contains(t, errs[0].Error(), "100000 values; at most 65536")
}

// TestMissingBraceNamesTheOpener: an unclosed block is reported where its
// keyword is, even when the '{' is on the next line, and in the file that
// opened it.
func TestMissingBraceNamesTheOpener(t *testing.T) {
	_, err := parseFiles(map[string]string{
		"keepalived.conf": "include vs.conf\n",
		"vs.conf": lines(
			"virtual_server 10.0.0.1 80 {",
			"  protocol TCP",
			"  real_server 10.0.0.2 80",
			"  {",
			"    weight 1",
			"}",
		),
	})
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, &ParseError{File: "vs.conf", Line: 1, Word: "virtual_server", Msg: `missing "}" for the block of`}, pe)
}

// Nested sequences multiply: their reads are bounded in all, whatever
// they emit.
func TestSequencesBounded(t *testing.T) {
	start := time.Now()
	errs := parseErrors(t, "~SEQ(a, 60000) ~SEQ(b, 60000) ! nothing\n")
	assert.Contains(t, errs[0].Error(), "~SEQ sequences read more than 1048576 lines in all")
	assert.Less(t, time.Since(start), 10*time.Second)
}
