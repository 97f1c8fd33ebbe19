package ipvsadm

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt from the formatters")

type goldenCase struct {
	name, fixture string
	args          []string
}

func loadGoldenCases(t *testing.T) []goldenCase {
	t.Helper()
	f, err := os.Open("testdata/golden/cases.txt")
	require.NoError(t, err)
	defer f.Close()
	var cases []goldenCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		require.GreaterOrEqual(t, len(fields), 3, sc.Text())
		cases = append(cases, goldenCase{fields[0], fields[1], fields[2:]})
	}
	require.NoError(t, sc.Err())
	return cases
}

// TestGolden runs each listing command line through Parse and Exec against
// a fixture and compares the output with testdata/golden/<name>.txt.
func TestGolden(t *testing.T) {
	for _, c := range loadGoldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			mk, ok := fixtures[c.fixture]
			require.True(t, ok, "fixture %q", c.fixture)
			cmd, err := Parse(c.args)
			require.NoError(t, err)
			cmd.List.Names = testNames{}
			var out strings.Builder
			require.NoError(t, mk().Exec(&out, cmd))
			path := filepath.Join("testdata", "golden", c.name+".txt")
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(out.String()), 0o644))
				return
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, string(want), out.String())
		})
	}
}

// TestGoldensMatchRealIpvsadm runs the real ipvsadm on the v4 cases, its
// kernel replaced by testdata/ipvsshim (an LD_PRELOAD stand-in for IPVS's
// sockopt interface, serving fixtureV4), and checks that it prints the
// goldens byte for byte. The v6 cases cannot be served that way (IPv6 and
// tunnel types only travel over netlink); pkg/ipvsdp compares xlbadm's
// listings with the real ipvsadm over real IPVS in the VMs.
func TestGoldensMatchRealIpvsadm(t *testing.T) {
	if os.Getenv("VMTEST") != "" {
		t.Skip("the VM guest has no C compiler; the host runs this, and pkg/ipvsdp compares with real IPVS here")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: ipvsadm opens a raw socket before anything else")
	}
	ipvsadm, err := osexec.LookPath("ipvsadm")
	if err != nil {
		ipvsadm = "/usr/sbin/ipvsadm"
	}
	var cc string
	ccErr := fmt.Errorf("none of cc, gcc, clang, clang-14 in PATH")
	for _, name := range []string{"cc", "gcc", "clang", "clang-14"} {
		if path, err := osexec.LookPath(name); err == nil {
			cc, ccErr = path, nil
			break
		}
	}
	if _, err := os.Stat(ipvsadm); err != nil || ccErr != nil {
		// tools/deps.sh test installs both; a machine without them cannot
		// check the goldens, and CI must.
		msg := fmt.Sprintf("needs ipvsadm and a C compiler (apt-get install ipvsadm clang-14): ipvsadm: %v; cc: %v", err, ccErr)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	shim := filepath.Join(dir, "shim.so")
	out, err := osexec.Command(cc, "-Wall", "-shared", "-fPIC", "-O1", "-o", shim,
		filepath.Join("testdata", "ipvsshim", "shim.c"), "-ldl").CombinedOutput()
	require.NoError(t, err, "building the shim: %s", out)
	writeShimState(t, dir)

	n := 0
	for _, c := range loadGoldenCases(t) {
		if c.fixture != "v4" {
			continue
		}
		n++
		t.Run(c.name, func(t *testing.T) {
			cmd := osexec.Command(ipvsadm, c.args...)
			cmd.Env = append(os.Environ(), "LD_PRELOAD="+shim,
				"IPVSSHIM_STATE="+filepath.Join(dir, "state"), "IPVSSHIM_CONN="+filepath.Join(dir, "conn"))
			got, _ := cmd.CombinedOutput() // error cases print and exit non-zero, as the goldens record
			want, err := os.ReadFile(filepath.Join("testdata", "golden", c.name+".txt"))
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got), "ipvsadm %s", strings.Join(c.args, " "))
		})
	}
	require.NotZero(t, n, "no v4 cases in testdata/golden/cases.txt")
}
