package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// requireRoundTrip parses data (includes see an empty file system) and, if
// it is a valid configuration, checks that Format gives a file that parses
// to the same Config and formats to the same bytes. If it is not valid,
// every error must name the file, a line and a message.
func requireRoundTrip(t *testing.T, name string, data []byte) {
	t.Helper()
	cfg, err := parse(memSource{}, name, data, Options{})
	if err != nil {
		var list ErrorList
		require.True(t, errors.As(err, &list), "error %T %v", err, err)
		require.NotEmpty(t, list)
		for _, e := range list {
			require.Equal(t, name, e.File, e.Error())
			require.Positive(t, e.Line, e.Error())
			require.NotEmpty(t, e.Msg, e.Error())
		}
		return
	}
	for _, w := range cfg.Warnings {
		require.Equal(t, name, w.File, w.String())
		require.Positive(t, w.Line, w.String())
	}

	out := Format(cfg)
	again, err := parse(memSource{}, "formatted.conf", out, Options{})
	require.NoError(t, err, "formatted:\n%s", out)
	require.Equal(t, string(out), string(Format(again)), "formatting is not stable")
	clearPositions(cfg)
	clearPositions(again)
	require.Equal(t, cfg, again, "formatted:\n%s", out)
}

func TestFormatRoundTrip(t *testing.T) {
	for _, src := range []string{
		"",
		vrrp1(" state MASTER\n priority 200\n nopreempt\n preempt_delay 3"),
		vrrp1(" version 3\n advert_int 0.37\n use_vmac\n unicast_peer {\n  10.0.0.2 min_ttl 3\n }"),
		"vrrp_instance \"odd name\" {\n unicast_peer {\n  fe80::1%eth0\n }\n virtual_router_id 9\n virtual_ipaddress {\n  fe80::10/64 dev \"e 0\" label x\n }\n}\n",
		`vrrp_script s { script "/bin/sh -c 'exit \"1\"' \\n \x01"` + "\n user '' grp }\n",
		"global_defs {\n script_user \"\" grp\n notification_email {\n  \"@x\" \"$y=1\" \"a#b\" ~z\n }\n router_id \"a b\\\\#\"\n}\n",
		vs1(" quorum 3\n hysteresis 5\n real_server 10.0.0.2 80 {\n  weight 0\n }"),
		"virtual_server ::ffff:10.0.0.1 0 {\n protocol SCTP\n persistence_granularity 96\n real_server ::ffff:10.0.0.2 {\n  MISC_CHECK {\n   misc_timeout 3\n   user root\n   misc_path \"x 'y z'\"\n  }\n }\n}\n",
		vs1(" delay_loop 2.5\n real_server 10.0.0.2 0 {\n  MISC_CHECK {\n   misc_path /x\n  }\n  DNS_CHECK {\n   type txt\n   name \"\"\n  }\n }"),
		// Entries inherit weight and reverse from the block separately.
		"track_file \"f 1\" {\n file \"/run/a b\"\n weight -7 reverse\n init_file -3 overwrite\n}\ntrack_file g {\n file /g\n init_file\n}\n" +
			"vrrp_track_file h {\n file /h\n weight 0\n}\n" +
			vrrp1(" track_file {\n  \"f 1\" weight 2\n  g weight 254 reverse\n }\n track_file {\n  h\n }"),
		"track_file f {\n file /f\n weight 3 reverse\n}\n" + vrrp1(" priority 255\n track_file {\n  f weight 0 noreverse\n }"),
		// Sync group members keep the reverse flag at weight 0.
		"track_file f {\n file /f\n weight 3 reverse\n}\n" + vrrp1(" track_file {\n  f\n }") +
			"vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n}\nvrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n track_file {\n  f weight -2 noreverse\n }\n}\n",
	} {
		t.Run("", func(t *testing.T) {
			_, err := parseFiles(map[string]string{"keepalived.conf": src})
			require.NoError(t, err, src)
			requireRoundTrip(t, "keepalived.conf", []byte(src))
		})
	}
}

func TestFormatEscapes(t *testing.T) {
	assert.Equal(t, `"/bin/x a 'b c'"`, command([]string{"/bin/x", "a", "b c"}))
	assert.Equal(t, `\047it\134\047s\047`, command([]string{"it's"}))
	assert.Equal(t, "a", word("a"))
	assert.Equal(t, `"a b"`, word("a b"))
	assert.Equal(t, `""`, word(""))
	assert.Equal(t, "1.5", seconds(1500000000))
	assert.Equal(t, "0.000001", seconds(1000))
	v4 := netip.MustParseAddr("10.0.0.1")
	assert.Equal(t, "255.255.255.0", lvs.Netmask(0xffffff00).Format(v4))
	assert.Equal(t, "255.0.255.0", lvs.Netmask(0xff00ff00).Format(v4))
	assert.Equal(t, "255.255.255.255", lvs.Netmask(0).Format(v4))
	assert.Equal(t, "64", lvs.Netmask(64).Format(netip.MustParseAddr("2001:db8::1")))
}

// FuzzParse checks that any input either fails with errors that all carry
// file:line, or parses to a Config that Format writes back losslessly.
// Seeds: the files of testdata/real, and testdata/fuzz/FuzzParse, each named
// for the corner it covers.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/real/*")
	require.NoError(f, err)
	for _, name := range files {
		if strings.HasSuffix(name, ".md") {
			continue
		}
		data, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		requireRoundTrip(t, "fuzz.conf", data)
	})
}
