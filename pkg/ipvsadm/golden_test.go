package ipvsadm

import (
	"bufio"
	"flag"
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
// goldens byte for byte. The shim also hides IPVS's generic-netlink family,
// so the check is the same on a kernel with IPVS loaded (the stock Debian
// 12 one, in the VM) as on one without. The v6 cases cannot be served that
// way (IPv6 and tunnel types only travel over netlink); pkg/dataplane/ipvs
// compares xlbadm's listings with the real ipvsadm over real IPVS in the
// VMs. In the VM guest, which has no C compiler, the shim comes built
// (IPVSSHIM_SO).
func TestGoldensMatchRealIpvsadm(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: ipvsadm opens a raw socket before anything else")
	}
	ipvsadm, err := osexec.LookPath("ipvsadm")
	if err != nil {
		ipvsadm = "/usr/sbin/ipvsadm"
	}
	if _, err := os.Stat(ipvsadm); err != nil {
		// tools/deps.sh test (make test) installs it: without it the
		// goldens are not checked against ipvsadm, which is a failure.
		t.Fatalf("needs ipvsadm (tools/deps.sh test, or apt-get install ipvsadm): %v", err)
	}
	dir := t.TempDir()
	shim := os.Getenv("IPVSSHIM_SO")
	if shim == "" {
		var cc string
		for _, name := range []string{"cc", "gcc", "clang", "clang-14"} {
			if path, err := osexec.LookPath(name); err == nil {
				cc = path
				break
			}
		}
		if cc == "" {
			t.Fatal("needs a C compiler for the shim (tools/deps.sh test, or apt-get install clang-14): none of cc, gcc, clang, clang-14 in PATH")
		}
		shim = filepath.Join(dir, "shim.so")
		out, err := osexec.Command(cc, "-Wall", "-shared", "-fPIC", "-O1", "-o", shim,
			filepath.Join("testdata", "ipvsshim", "shim.c"), "-ldl").CombinedOutput()
		require.NoError(t, err, "building the shim: %s", out)
	}
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
			// Over the sockopt interface a dest has no tunnel type: ipvsadm
			// copies the kernel's entries into a buffer it never clears and
			// saves a TUN real's type from whatever that holds (ipip, as
			// netlink gives it, on this host; nothing in the 6.1 VM). The
			// type is checked over netlink, against the kernel, by
			// TestV6ListingsMatchKernelIpvsadm.
			noType := func(b []byte) string { return strings.ReplaceAll(string(b), " --tun-type ipip\n", "\n") }
			assert.Equal(t, noType(want), noType(got), "ipvsadm %s", strings.Join(c.args, " "))
		})
	}
	require.NotZero(t, n, "no v4 cases in testdata/golden/cases.txt")
}
