package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTrackFile(t *testing.T) {
	cfg := mustParse(t, lines(
		"track_file down {", // line 1
		`  file "/var/run/keepalived/down"`,
		"}",
		"track_file offset {", // line 4
		"  file /run/offset",
		"  weight -10 reverse",
		"  init_file 5 overwrite",
		"}",
		"vrrp_instance VI_1 {", // line 9
		"  interface eth0",
		"  virtual_router_id 51",
		"  priority 150",
		"  virtual_ipaddress {",
		"    10.0.0.100/24",
		"  }",
		"  track_file {",
		"    down",
		"    offset weight 20",
		"  }",
		"  track_file {", // entries of several blocks add up
		"    down weight 0",
		"  }",
		"}",
	))
	assert.Equal(t, []TrackFile{{
		Name: "down", Path: "/var/run/keepalived/down", Weight: 1,
		Pos: Pos{"keepalived.conf", 1},
	}, {
		Name: "offset", Path: "/run/offset", Weight: -10, Reverse: true,
		InitFile: true, InitValue: 5, Overwrite: true,
		Pos: Pos{"keepalived.conf", 4},
	}}, cfg.TrackFiles)
	assert.Equal(t, &cfg.TrackFiles[1], cfg.TrackFile("offset"))
	assert.Nil(t, cfg.TrackFile("nosuch"))
	// An entry's weight without reverse|noreverse keeps the block's
	// reverse flag.
	assert.Equal(t, []TrackFileRef{
		{Name: "down", Weight: 1},
		{Name: "offset", Weight: 20, Reverse: true},
	}, cfg.Instances[0].TrackFiles)
	assert.Equal(t, []string{
		`keepalived.conf:21: (VI_1) duplicate track_file, ignoring: "down"`,
	}, warningStrings(cfg))
}

// TestTrackFileBlock covers the settings of a track_file block one by one.
func TestTrackFileBlock(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     string
		want     TrackFile
		warnings []string
	}{{
		name: "defaults",
		want: TrackFile{Weight: 1},
	}, {
		name: "weight",
		body: "weight -254",
		want: TrackFile{Weight: -254},
	}, {
		name: "weight with sign",
		body: "weight +7",
		want: TrackFile{Weight: 7},
	}, {
		name: "weight reverse",
		body: "weight 3 reverse",
		want: TrackFile{Weight: 3, Reverse: true},
	}, {
		name: "weight 0",
		body: "weight 0",
		want: TrackFile{Weight: 0},
	}, {
		name: "init_file alone writes 0 if there is no file",
		body: "init_file",
		want: TrackFile{Weight: 1, InitFile: true},
	}, {
		name: "init_file value",
		body: "init_file -5",
		want: TrackFile{Weight: 1, InitFile: true, InitValue: -5},
	}, {
		name: "init_file overwrite",
		body: "init_file overwrite",
		want: TrackFile{Weight: 1, InitFile: true, Overwrite: true},
	}, {
		name: "init_file value and overwrite in either order",
		body: "init_file overwrite 254",
		want: TrackFile{Weight: 1, InitFile: true, InitValue: 254, Overwrite: true},
	}, {
		name: "each init_file starts afresh",
		body: "init_file 7 overwrite\n init_file",
		want: TrackFile{Weight: 1, InitFile: true},
	}, {
		name:     "a second file is ignored",
		body:     "file /b",
		want:     TrackFile{Weight: 1},
		warnings: []string{`keepalived.conf:3: (f) file already set, ignoring: "/b"`},
	}, {
		name:     "a second weight is ignored",
		body:     "weight 4\n weight 5 reverse",
		want:     TrackFile{Weight: 4},
		warnings: []string{`keepalived.conf:4: (f) weight already set, ignoring: "5"`},
	}, {
		// keepalived tells a set weight from the default 1 by its value.
		name: "weight 1 does not count as set",
		body: "weight 1\n weight 5",
		want: TrackFile{Weight: 5},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, "track_file f {\n file /a\n "+tc.body+"\n}\n")
			require.Len(t, cfg.TrackFiles, 1)
			tc.want.Name, tc.want.Pos = "f", Pos{"keepalived.conf", 1}
			if tc.want.Path == "" {
				tc.want.Path = "/a"
			}
			assert.Equal(t, tc.want, cfg.TrackFiles[0])
			assert.Equal(t, tc.warnings, warningStrings(cfg))
		})
	}
}

func TestTrackFileRemoved(t *testing.T) {
	cfg := mustParse(t, lines(
		"track_file nofile {",
		"  weight 3",
		"}",
		`track_file empty { file "" }`,
		"track_file nofile {", // the first one was removed: no clash
		"  file /run/nofile",
		"}",
	))
	assert.Equal(t, []TrackFile{{Name: "nofile", Path: "/run/nofile", Weight: 1, Pos: Pos{"keepalived.conf", 5}}}, cfg.TrackFiles)
	assert.Equal(t, []string{
		`keepalived.conf:1: no file set, removing track_file "nofile"`,
		`keepalived.conf:4: (empty) empty file name ignored: "file"`,
		`keepalived.conf:4: no file set, removing track_file "empty"`,
	}, warningStrings(cfg))
}

func TestVRRPTrackFileSynonym(t *testing.T) {
	cfg := mustParse(t, "vrrp_track_file f {\n file /a\n weight 2\n}\n"+vrrp1(" track_file {\n  f\n }"))
	assert.Equal(t, []TrackFile{{Name: "f", Path: "/a", Weight: 2, Pos: Pos{"keepalived.conf", 1}}}, cfg.TrackFiles)
	assert.Equal(t, []TrackFileRef{{Name: "f", Weight: 2}}, cfg.Instances[0].TrackFiles)
	assert.Equal(t, []string{`keepalived.conf:1: deprecated, use track_file: "vrrp_track_file"`}, warningStrings(cfg))
}

// TestTrackFileEntries covers how an instance's entries resolve against the
// blocks: f is "weight 5 reverse", g is unweighted (1).
func TestTrackFileEntries(t *testing.T) {
	const files = "track_file f {\n file /f\n weight 5 reverse\n}\ntrack_file g {\n file /g\n}\n" // 7 lines
	for _, tc := range []struct {
		name     string
		body     string
		want     []TrackFileRef
		warnings []string
	}{{
		name: "block weights",
		body: "track_file {\n f\n g\n }",
		want: []TrackFileRef{{Name: "f", Weight: 5, Reverse: true}, {Name: "g", Weight: 1}},
	}, {
		name: "entry weight keeps the block's reverse",
		body: "track_file {\n f weight -7\n }",
		want: []TrackFileRef{{Name: "f", Weight: -7, Reverse: true}},
	}, {
		name: "noreverse",
		body: "track_file {\n f weight 5 noreverse\n }",
		want: []TrackFileRef{{Name: "f", Weight: 5}},
	}, {
		name: "entry reverse",
		body: "track_file {\n g weight 2 reverse\n }",
		want: []TrackFileRef{{Name: "g", Weight: 2, Reverse: true}},
	}, {
		name: "±254 is not clamped",
		body: "track_file {\n f weight 254\n g weight -254\n }",
		want: []TrackFileRef{{Name: "f", Weight: 254, Reverse: true}, {Name: "g", Weight: -254}},
	}, {
		name:     "undefined",
		body:     "track_file {\n nosuch\n g\n }",
		want:     []TrackFileRef{{Name: "g", Weight: 1}},
		warnings: []string{`keepalived.conf:12: (VI_1) track_file not found, ignoring: "nosuch"`},
	}, {
		name:     "duplicate",
		body:     "track_file {\n g weight 3\n g\n }",
		want:     []TrackFileRef{{Name: "g", Weight: 3}},
		warnings: []string{`keepalived.conf:13: (VI_1) duplicate track_file, ignoring: "g"`},
	}, {
		// keepalived's rule: weight 1 (the default) becomes 0, any other
		// weight drops the entry.
		name: "the owner's weights",
		body: "priority 255\n track_file {\n f\n g\n }",
		want: []TrackFileRef{{Name: "g", Weight: 0}},
		warnings: []string{
			`keepalived.conf:8: (VI_1) priority 255 cannot change; ignoring weighted track_file "f"`,
			`keepalived.conf:8: priority 255 cannot change: track_file weight 1 (the default) set to 0 in "VI_1"`,
		},
	}, {
		name: "the owner keeps weight 0 and reverse",
		body: "priority 255\n track_file {\n f weight 0\n }",
		want: []TrackFileRef{{Name: "f", Weight: 0, Reverse: true}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, files+vrrp1(" "+tc.body))
			require.Len(t, cfg.Instances, 1)
			assert.Equal(t, tc.want, cfg.Instances[0].TrackFiles)
			assert.Equal(t, tc.warnings, warningStrings(cfg))
		})
	}
}

// TestTrackFileDefinedLater: keepalived looks a track_file up when it reads
// the entry, so one defined further down is not found.
func TestTrackFileDefinedLater(t *testing.T) {
	cfg := mustParse(t, vrrp1(" track_file {\n  later\n }")+"track_file later {\n file /l\n}\n")
	assert.Empty(t, cfg.Instances[0].TrackFiles)
	assert.Len(t, cfg.TrackFiles, 1)
	assert.Equal(t, []string{
		`keepalived.conf:5: (VI_1) track_file must be defined before it is tracked; ignoring "later"`,
	}, warningStrings(cfg))
}

// TestTrackFileSyncGroup: members of a sync group without
// sync_group_tracking_weight get keepalived's rule for track_file entries
// (weight 1 becomes 0, other weights drop the entry), not the zeroing of
// track_script and track_interface weights.
func TestTrackFileSyncGroup(t *testing.T) {
	inst := func(name, vrid string) string {
		return "vrrp_instance " + name + " {\n interface eth0\n virtual_router_id " + vrid +
			"\n track_file {\n  up\n  down weight 0\n  one\n }\n virtual_ipaddress {\n  10.0.0." + vrid + "\n }\n}\n" // 12 lines
	}
	const files = "track_file up {\n file /up\n weight 10\n}\ntrack_file down {\n file /down\n weight 2 reverse\n}\n" +
		"track_file one {\n file /one\n}\n" // 11 lines
	cfg := mustParse(t, files+inst("VI_1", "1")+inst("VI_2", "2")+inst("VI_3", "3")+inst("VI_4", "4")+lines(
		"vrrp_sync_group G1 {", // line 60
		" group {\n  VI_1\n  VI_2\n }",
		" track_file {\n  up weight -3\n  down\n  nosuch\n }",
		"}",
		"vrrp_sync_group G2 {",
		" group {\n  VI_3\n  VI_4\n }",
		" sync_group_tracking_weight",
		"}",
	))
	require.Len(t, cfg.SyncGroups, 2)
	assert.Equal(t, []TrackFileRef{{Name: "up", Weight: -3}, {Name: "down", Weight: 2, Reverse: true}}, cfg.SyncGroups[0].TrackFiles)
	assert.Empty(t, cfg.SyncGroups[1].TrackFiles)

	// Members of G1 keep the reverse flags; G2 keeps the weights.
	unweighted := []TrackFileRef{{Name: "down", Reverse: true}, {Name: "one"}}
	weighted := []TrackFileRef{{Name: "up", Weight: 10}, {Name: "down", Reverse: true}, {Name: "one", Weight: 1}}
	assert.Equal(t, unweighted, cfg.Instance("VI_1").TrackFiles)
	assert.Equal(t, unweighted, cfg.Instance("VI_2").TrackFiles)
	assert.Equal(t, weighted, cfg.Instance("VI_3").TrackFiles)
	assert.Equal(t, weighted, cfg.Instance("VI_4").TrackFiles)
	assert.Equal(t, []string{
		`keepalived.conf:68: (G1) track_file not found, ignoring: "nosuch"`,
		`keepalived.conf:12: (VI_1) member of sync group G1 (without sync_group_tracking_weight): ignoring weighted track_file "up"`,
		`keepalived.conf:12: member of sync group G1 (without sync_group_tracking_weight): tracking weights set to 0 in "VI_1"`,
		`keepalived.conf:24: (VI_2) member of sync group G1 (without sync_group_tracking_weight): ignoring weighted track_file "up"`,
		`keepalived.conf:24: member of sync group G1 (without sync_group_tracking_weight): tracking weights set to 0 in "VI_2"`,
	}, warningStrings(cfg))
}

func TestTrackFileErrors(t *testing.T) {
	const f = "track_file f {\n file /f\n" // then line 3
	for _, tc := range []struct {
		name, src, want string
	}{
		{"block weight too big", f + " weight 1000\n}\n", `keepalived.conf:3: weight must be an integer in [-254, 254], got "1000"`},
		{"block weight not a number", f + " weight high\n}\n", `keepalived.conf:3: weight must be an integer in [-254, 254], got "high"`},
		{"block weight noreverse", f + " weight 3 noreverse\n}\n", `keepalived.conf:3: track_file weight takes only reverse after the value, got "noreverse"`},
		{"block weight missing", f + " weight\n}\n", `keepalived.conf:3: missing value after "weight"`},
		{"entry weight too big", f + "}\n" + vrrp1(" track_file {\n  f weight 300\n }"), `keepalived.conf:8: tracking weight must be an integer in [-254, 254], got "300"`},
		{"entry weight syntax", f + "}\n" + vrrp1(" track_file {\n  f wieght 3\n }"), `keepalived.conf:8: track_file entry: expected "weight N" after the name, got "wieght"`},
		{"entry reverse", f + "}\n" + vrrp1(" track_file {\n  f weight 3 backwards\n }"), `keepalived.conf:8: expected reverse or noreverse after the weight, got "backwards"`},
		{"sync group entry weight", f + "}\nvrrp_sync_group G {\n track_file {\n  f weight -255\n }\n}\n", `keepalived.conf:6: tracking weight must be an integer in [-254, 254], got "-255"`},
		{"init_file value too big", f + " init_file 300\n}\n", `keepalived.conf:3: init_file value must be an integer in [-254, 254], got "300"`},
		{"init_file value not a number", f + " init_file 1x\n}\n", `keepalived.conf:3: init_file value must be an integer in [-254, 254], got "1x"`},
		{"init_file plus sign", f + " init_file +5\n}\n", `keepalived.conf:3: init_file takes a value and overwrite, got "+5"`},
		{"init_file option", f + " init_file create\n}\n", `keepalived.conf:3: init_file takes a value and overwrite, got "create"`},
		{"file missing", "track_file f {\n file\n}\n", `keepalived.conf:2: missing value after "file"`},
		{"unknown keyword", f + " interval 3\n}\n", `keepalived.conf:3: unknown keyword in track_file: "interval"`},
		{"no name", "track_file {\n file /f\n}\n", `keepalived.conf:1: missing name after "track_file"`},
		{"no block", "track_file f\n", `keepalived.conf:1: missing "{" after "track_file"`},
		{"defined twice", f + "}\n" + f + "}\n", `keepalived.conf:4: track_file defined twice: "f"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := parseErrors(t, tc.src)
			assert.Equal(t, tc.want, errs[0].Error())
		})
	}
}
