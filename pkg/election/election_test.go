package election

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/config"
)

// vi is a vrrp_instance for the tests' keepalived.conf files.
type vi struct {
	name  string // VI_1 unless set
	iface string // eth0 unless set
	vrid  int    // 51 unless set
	prio  int
	vips  string // 10.0.0.100/24 unless set
	extra string // more lines inside the block
}

func (v vi) String() string {
	name, iface, vrid, vipList := v.name, v.iface, v.vrid, v.vips
	if name == "" {
		name = "VI_1"
	}
	if iface == "" {
		iface = "eth0"
	}
	if vrid == 0 {
		vrid = 51
	}
	if vipList == "" {
		vipList = "10.0.0.100/24"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "vrrp_instance %s {\n    interface %s\n    virtual_router_id %d\n", name, iface, vrid)
	if v.prio != 0 {
		fmt.Fprintf(&b, "    priority %d\n", v.prio)
	}
	b.WriteString("    advert_int 1\n    virtual_ipaddress {\n")
	for _, a := range strings.Fields(vipList) {
		fmt.Fprintf(&b, "        %s\n", a)
	}
	b.WriteString("    }\n")
	for _, l := range strings.Split(strings.TrimSpace(v.extra), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			fmt.Fprintf(&b, "    %s\n", l)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// script is a vrrp_script block.
func script(name string, weight int) string {
	return fmt.Sprintf("vrrp_script %s {\n    script \"/bin/true\"\n    weight %d\n}\n", name, weight)
}

const (
	trackChk  = "track_script {\n chk\n}"
	authA     = "authentication {\n auth_type PASS\n auth_pass secret\n}"
	authOther = "authentication {\n auth_type PASS\n auth_pass other\n}"
)

// checkFiles writes the directors' files (a.conf, b.conf, ...) and checks
// them.
func checkFiles(t *testing.T, files ...string) Report {
	t.Helper()
	dir := t.TempDir()
	var ds []Director
	for i, text := range files {
		path := filepath.Join(dir, string(rune('a'+i))+".conf")
		require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
		cfg, err := config.Parse(path)
		require.NoError(t, err, "parse %s:\n%s", path, text)
		ds = append(ds, Director{Name: path, Config: cfg})
	}
	return Check(ds)
}

type want struct {
	sev  Severity
	kind Kind
	has  []string // substrings of the message
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		want  []want
		// clean: no warning or error besides those in want.
		clean  bool
		failed bool
	}{
		{
			name: "weight larger than the gap moves the VIP",
			files: []string{
				script("chk", -40) + vi{prio: 150, extra: trackChk + "\n" + authA}.String(),
				script("chk", -40) + vi{prio: 120, extra: trackChk + "\n" + authA}.String(),
			},
			clean: true,
		},
		{
			name: "classic: weight not larger than the gap",
			files: []string{
				script("chk", -20) + vi{prio: 150, extra: trackChk}.String(),
				script("chk", -20) + vi{prio: 120, extra: trackChk}.String(),
			},
			want: []want{{Error, KindStaysMaster, []string{
				"vrrp_script chk (", "a.conf:1, weight -20) fails on ", "a.conf:5 VI_1",
				"from 150 to 130", "b.conf:5 VI_1, has 120", "smallest weight that moves the VIP is -31",
			}}},
		},
		{
			name: "weight equal to the gap: the BACKUP does not take over from an equal priority",
			files: []string{
				script("chk", -30) + vi{prio: 150, extra: trackChk}.String(),
				script("chk", -30) + vi{prio: 120, extra: trackChk}.String(),
			},
			want: []want{{Error, KindStaysMaster, []string{"from 150 to 120", "is -31"}}},
		},
		{
			name: "positive weights too small",
			files: []string{
				script("chk", 5) + vi{prio: 110, extra: trackChk}.String(),
				script("chk", 5) + vi{prio: 100, extra: trackChk}.String(),
			},
			want: []want{{Error, KindStaysMaster, []string{"from 115 to 110", "has 105", "is 11"}}},
		},
		{
			name: "positive weights large enough",
			files: []string{
				script("chk", 20) + vi{prio: 110, extra: trackChk}.String(),
				script("chk", 20) + vi{prio: 100, extra: trackChk}.String(),
			},
			clean: true,
		},
		{
			name: "reverse: the script succeeding is the failure",
			files: []string{
				script("chk", -20) + vi{prio: 150, extra: "track_script {\n chk weight -20 reverse\n}"}.String(),
				script("chk", -20) + vi{prio: 120, extra: "track_script {\n chk weight -20 reverse\n}"}.String(),
			},
			want: []want{{Error, KindStaysMaster, []string{"weight -20 reverse) succeeds", "from 170 to 150", "has 140", "is -31"}}},
		},
		{
			name: "weight 0 puts the failed MASTER in FAULT",
			files: []string{
				script("chk", 0) + vi{prio: 150, extra: trackChk}.String(),
				script("chk", 0) + vi{prio: 120, extra: trackChk}.String(),
			},
			want:  []want{{Info, KindNoMaster, []string{"a.conf's vrrp_script chk fails and ", "b.conf's vrrp_script chk fails"}}},
			clean: true,
		},
		{
			name: "a nopreempt BACKUP never takes over from a live MASTER",
			files: []string{
				script("chk", -100) + vi{prio: 150, extra: trackChk + "\nnopreempt"}.String(),
				script("chk", -100) + vi{prio: 120, extra: trackChk + "\nnopreempt"}.String(),
			},
			want: []want{
				{Error, KindStaysMaster, []string{"from 150 to 50", "has nopreempt and never takes over", "use weight 0"}},
				{Info, KindHistory, []string{"depends on history", "have nopreempt"}},
			},
		},
		{
			name: "different VIP sets: both MASTER",
			files: []string{
				vi{prio: 150}.String(),
				vi{prio: 120, vips: "10.0.0.100/24 10.0.0.101/24"}.String(),
			},
			want: []want{{Error, KindSplit, []string{
				"both claim MASTER with every director healthy", "a.conf drops ",
				"(VIPs 10.0.0.100, the other's 10.0.0.100 10.0.0.101)",
			}}},
			failed: true,
		},
		{
			name: "the same VIPs in another order",
			files: []string{
				vi{prio: 150, vips: "10.0.0.101/24 10.0.0.100/24"}.String(),
				vi{prio: 120, vips: "10.0.0.100/24 10.0.0.101/24"}.String(),
			},
			clean: true,
		},
		{
			name: "different auth_pass",
			files: []string{
				vi{prio: 150, extra: authA}.String(),
				vi{prio: 120, extra: authOther}.String(),
			},
			want:   []want{{Error, KindSplit, []string{"auth_pass differs"}}},
			failed: true,
		},
		{
			name: "authentication on one side only",
			files: []string{
				vi{prio: 150, extra: authA}.String(),
				vi{prio: 120}.String(),
			},
			want:   []want{{Error, KindSplit, []string{"auth_type PASS, the other's none"}}},
			failed: true,
		},
		{
			name: "VRRPv2 advert_int differs",
			files: []string{
				vi{prio: 150}.String(),
				strings.Replace(vi{prio: 120}.String(), "advert_int 1", "advert_int 2", 1),
			},
			want:   []want{{Error, KindSplit, []string{"advert_int 1s, the other's 2s"}}},
			failed: true,
		},
		{
			name: "VRRPv3 advert_int differs: taken anyway",
			files: []string{
				vi{prio: 150, extra: "version 3"}.String(),
				strings.Replace(vi{prio: 120, extra: "version 3"}.String(), "advert_int 1", "advert_int 2", 1),
			},
			want:  []want{{Info, KindAdvertInt, []string{"adopts its MASTER's interval"}}},
			clean: true,
		},
		{
			name: "version differs",
			files: []string{
				vi{prio: 150, extra: "version 3"}.String(),
				vi{prio: 120}.String(),
			},
			want:   []want{{Error, KindSplit, []string{"VRRP version 3, the other's 2"}}},
			failed: true,
		},
		{
			name: "unicast peers that list each other",
			files: []string{
				vi{prio: 150, extra: "unicast_src_ip 10.0.0.1\nunicast_peer {\n 10.0.0.2\n}"}.String(),
				vi{prio: 120, extra: "unicast_src_ip 10.0.0.2\nunicast_peer {\n 10.0.0.1\n}"}.String(),
			},
			clean: true,
		},
		{
			name: "unicast peer list without the other: split once the other outranks it",
			files: []string{
				script("chk", -40) + vi{prio: 150, extra: trackChk + "\nunicast_src_ip 10.0.0.1\nunicast_peer {\n 10.0.0.2\n}"}.String(),
				script("chk", -40) + vi{prio: 120, extra: trackChk + "\nunicast_src_ip 10.0.0.2\nunicast_peer {\n 10.0.0.3\n}"}.String(),
			},
			want: []want{{Error, KindSplit, []string{
				"both claim MASTER when ", "a.conf's vrrp_script chk fails",
				"a.conf drops ", "the other's unicast_peer does not list its unicast_src_ip 10.0.0.1",
			}}},
			failed: true,
		},
		{
			name: "unicast one way, the deaf one never outranked",
			files: []string{
				vi{prio: 150, extra: "unicast_src_ip 10.0.0.1\nunicast_peer {\n 10.0.0.2\n}"}.String(),
				vi{prio: 120, extra: "unicast_src_ip 10.0.0.2\nunicast_peer {\n 10.0.0.3\n}"}.String(),
			},
			want: []want{{Warning, KindSplit, []string{"no combination makes both MASTER"}}},
		},
		{
			name: "unicast on one side, multicast on the other",
			files: []string{
				vi{prio: 150, extra: "unicast_src_ip 10.0.0.1\nunicast_peer {\n 10.0.0.2\n}"}.String(),
				vi{prio: 120}.String(),
			},
			want:   []want{{Error, KindSplit, []string{"expects unicast adverts"}}},
			failed: true,
		},
		{
			name: "check_unicast_src without the other's source",
			files: []string{
				vi{prio: 150, extra: "check_unicast_src\nunicast_src_ip 10.0.0.1\nunicast_peer {\n 10.0.0.2\n}"}.String(),
				vi{prio: 120, extra: "unicast_src_ip 10.0.0.9\nunicast_peer {\n 10.0.0.1\n}"}.String(),
			},
			want: []want{{Error, KindSplit, []string{
				"both claim MASTER with every director healthy",
				"check_unicast_src and its unicast_peer does not list the other's unicast_src_ip 10.0.0.9",
			}}},
			failed: true,
		},
		{
			name: "the same priority",
			files: []string{
				vi{prio: 100, extra: "unicast_src_ip 10.0.0.1\nunicast_peer {\n 10.0.0.2\n}"}.String(),
				vi{prio: 100, extra: "unicast_src_ip 10.0.0.2\nunicast_peer {\n 10.0.0.1\n}"}.String(),
			},
			want: []want{{Warning, KindTie, []string{"both have priority 100", "does not take over from an equal priority", "b.conf:1 VI_1's 10.0.0.2"}}},
		},
		{
			name: "address owner faults on an unweighted tracker",
			files: []string{
				script("chk", 0) + vi{prio: 255, extra: trackChk + "\nstate MASTER"}.String(),
				script("chk", 0) + vi{prio: 100, extra: trackChk}.String(),
			},
			clean: true,
			want: []want{
				{Info, KindNoMaster, []string{"vrrp_script chk fails"}},
				{Info, KindOwner, []string{"is the address owner (priority 255): weighted trackers do not move it"}},
			},
		},
		{
			name: "two address owners",
			files: []string{
				vi{prio: 255}.String(),
				vi{prio: 255}.String(),
			},
			want:  []want{{Warning, KindOwner, []string{"both the address owner", "254"}}},
			clean: true,
		},
		{
			// pkg/config drops the script, as keepalived does, with a
			// warning that xlb check prints: nothing is left to elect on.
			name: "sync group member's weighted track_script: dropped",
			files: []string{
				script("chk", -60) + vi{prio: 150, extra: trackChk}.String() + vi{name: "VI_2", vrid: 52, prio: 150, vips: "10.0.1.100/24"}.String() +
					"vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n}\n",
				script("chk", -60) + vi{prio: 120, extra: trackChk}.String() + vi{name: "VI_2", vrid: 52, prio: 120, vips: "10.0.1.100/24"}.String() +
					"vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n}\n",
			},
			clean: true,
		},
		{
			name: "sync_group_tracking_weight keeps the member's weights",
			files: []string{
				script("chk", -60) + vi{prio: 150, extra: trackChk}.String() + vi{name: "VI_2", vrid: 52, prio: 150, vips: "10.0.1.100/24"}.String() +
					"vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n sync_group_tracking_weight\n}\n",
				script("chk", -60) + vi{prio: 120, extra: trackChk}.String() + vi{name: "VI_2", vrid: 52, prio: 120, vips: "10.0.1.100/24"}.String() +
					"vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n sync_group_tracking_weight\n}\n",
			},
			clean: true,
		},
		{
			name: "a sync group's own weighted tracker counts with its weight",
			files: []string{
				script("chk", -20) + vi{prio: 150}.String() + vi{name: "VI_2", vrid: 52, prio: 150, vips: "10.0.1.100/24"}.String() +
					"vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n track_script {\n chk\n }\n}\n",
				script("chk", -20) + vi{prio: 120}.String() + vi{name: "VI_2", vrid: 52, prio: 120, vips: "10.0.1.100/24"}.String() +
					"vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n track_script {\n chk\n }\n}\n",
			},
			want: []want{{Error, KindStaysMaster, []string{"weight -20) fails", "from 150 to 130", "is -31"}}},
		},
		{
			name: "sync group members electing different directors",
			files: []string{
				vi{prio: 150}.String() + vi{name: "VI_2", vrid: 52, prio: 100, vips: "10.0.1.100/24"}.String() +
					"vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n}\n",
				vi{prio: 120}.String() + vi{name: "VI_2", vrid: 52, prio: 130, vips: "10.0.1.100/24"}.String() +
					"vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n}\n",
			},
			want:  []want{{Warning, KindSyncGroup, []string{"VRID 51 IPv4 (VI_1) elects ", "a.conf and VRID 52 IPv4 (VI_2) elects ", "b.conf;", "depends on history"}}},
			clean: true,
		},
		{
			name: "preempt_delay",
			files: []string{
				vi{prio: 150, extra: "preempt_delay 30"}.String(),
				vi{prio: 120}.String(),
			},
			want:  []want{{Info, KindHistory, []string{"preempt_delay 30s"}}},
			clean: true,
		},
		{
			name: "a VRID on an interface another virtual router of that VRID uses",
			files: []string{
				vi{prio: 150, iface: "eth0", vips: "10.0.0.100/24"}.String() + vi{name: "VI_2", iface: "eth1", prio: 150, vips: "10.0.1.100/24"}.String(),
				vi{prio: 120, iface: "eth1", vips: "10.0.0.100/24"}.String() + vi{name: "VI_2", iface: "eth0", prio: 120, vips: "10.0.1.100/24"}.String(),
			},
			want: []want{{Warning, KindCollision, []string{"different virtual routers with the same VRID on interface eth", "VIPs 10.0.0.100", "VIPs 10.0.1.100"}}},
		},
		{
			name: "trio: the gap is to the best BACKUP",
			files: []string{
				script("chk", -15) + vi{prio: 150, extra: trackChk}.String(),
				script("chk", -15) + vi{prio: 120, extra: trackChk}.String(),
				script("chk", -15) + vi{prio: 130, extra: trackChk}.String(),
			},
			want: []want{{Error, KindStaysMaster, []string{"from 150 to 135", "c.conf:5 VI_1, has 130", "is -21"}}},
		},
		{
			name: "trio with equal BACKUPs",
			files: []string{
				script("chk", -60) + vi{prio: 150, extra: trackChk}.String(),
				script("chk", -60) + vi{prio: 100, extra: trackChk}.String(),
				script("chk", -60) + vi{prio: 100, extra: trackChk}.String(),
			},
			want: []want{{Warning, KindTie, []string{"b.conf:5 VI_1 and ", "c.conf:5 VI_1 both have priority 100", "the files do not say which"}}},
		},
		{
			name: "trio, correct",
			files: []string{
				script("chk", -60) + vi{prio: 150, extra: trackChk}.String(),
				script("chk", -60) + vi{prio: 120, extra: trackChk}.String(),
				script("chk", -60) + vi{prio: 100, extra: trackChk}.String(),
			},
			clean: true,
		},
		{
			name: "a virtual router on one director only",
			files: []string{
				vi{prio: 150}.String() + vi{name: "VI_2", vrid: 60, prio: 150, vips: "10.0.6.1/24"}.String(),
				vi{prio: 120}.String(),
			},
			want:  []want{{Info, KindAlone, []string{"only ", "VI_2 has this virtual router"}}},
			clean: true,
		},
		{
			name: "track_file weight too small",
			files: []string{
				"track_file tf {\n file /tmp/x\n weight -20\n}\n" + vi{prio: 150, extra: "track_file {\n tf\n}"}.String(),
				"track_file tf {\n file /tmp/x\n weight -20\n}\n" + vi{prio: 120, extra: "track_file {\n tf\n}"}.String(),
			},
			want: []want{{Error, KindStaysMaster, []string{"track_file tf", "holds 1", "from 150 to 130", "is -31"}}},
		},
		{
			name: "track_interface weight too small",
			files: []string{
				vi{prio: 150, extra: "track_interface {\n eth1 weight -10\n}"}.String(),
				vi{prio: 120, extra: "track_interface {\n eth1 weight -10\n}"}.String(),
			},
			want: []want{{Error, KindStaysMaster, []string{"interface eth1", "goes down", "from 150 to 140", "is -31"}}},
		},
		{
			name: "IPv6 pair, correct",
			files: []string{
				vi{prio: 150, vips: "fd00::100/64"}.String(),
				vi{prio: 120, vips: "fd00::100/64"}.String(),
			},
			clean: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := checkFiles(t, tc.files...)
			var lines []string
			for _, f := range rep.Findings {
				lines = append(lines, f.String())
			}
			all := strings.Join(lines, "\n")
			t.Logf("\n%s\n%s", all, rep.Summary())
			for _, w := range tc.want {
				found := false
				for _, f := range rep.Findings {
					if f.Severity != w.sev || f.Kind != w.kind {
						continue
					}
					ok := true
					for _, h := range w.has {
						ok = ok && strings.Contains(f.Message, h)
					}
					found = found || ok
				}
				assert.True(t, found, "want a %s %s finding with %q; got:\n%s", w.sev, w.kind, w.has, all)
			}
			if tc.clean {
				for _, f := range rep.Findings {
					if f.Severity == Info {
						continue
					}
					wanted := false
					for _, w := range tc.want {
						wanted = wanted || w.kind == f.Kind && w.sev == f.Severity
					}
					assert.True(t, wanted, "unexpected finding: %s", f)
				}
			}
			failed := tc.failed
			for _, w := range tc.want {
				failed = failed || w.sev == Error // every error fails the check
			}
			assert.Equal(t, failed, rep.Failed(), "Failed; findings:\n%s", all)
			assert.Contains(t, rep.Summary(), map[bool]string{true: "FAIL", false: "OK"}[failed])
		})
	}
}

// A member's FAULT is the whole sync group's: VRID 51 goes to FAULT on a
// tracker of VI_2 (another interface, another VRID).
func TestSyncGroupFault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.conf")
	require.NoError(t, os.WriteFile(path, []byte(script("chk2", 0)+vi{prio: 150}.String()+
		vi{name: "VI_2", iface: "eth1", vrid: 52, prio: 150, vips: "10.0.1.100/24", extra: "track_script {\n chk2\n}"}.String()+
		"vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n}\n"), 0o644))
	cfg, err := config.Parse(path)
	require.NoError(t, err)
	s := newSide(0, path, cfg, cfg.Instance("VI_1"))
	for i, o := range s.objs {
		p, fault := s.eval(s.values([]int{i}), nil)
		assert.True(t, fault, "%s %s: priority %d, want FAULT", o.name(), o.badState(), p)
	}
	var names []string
	for _, o := range s.objs {
		names = append(names, o.name())
	}
	assert.ElementsMatch(t, []string{"interface eth0", "interface eth1", "vrrp_script chk2"}, names)
	// healthy, and FAULT.
	assert.Len(t, s.outcomes, 2)
}

// The sides' outcomes hold keepalived's arithmetic: clamped to 1..254, the
// owner at 255 whatever its weighted trackers.
func TestSideOutcomes(t *testing.T) {
	rep := checkFiles(t,
		script("up", 200)+script("down", -200)+vi{prio: 100, extra: "track_script {\n up\n down\n}"}.String(),
		script("up", 200)+script("down", -200)+vi{prio: 100, extra: "track_script {\n up\n down\n}"}.String(),
	)
	require.Len(t, rep.Routers, 1)
	// healthy: 100+200 clamped to 254.
	assert.Equal(t, uint8(254), rep.Routers[0].Members[0].Priority)
}
