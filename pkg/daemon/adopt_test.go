package daemon

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/ipvssync"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// The kernel's table as /proc/net/ip_vs_conn gives it becomes the records
// IPVS's master would send: states by name, INACTIVE where IPVS counts
// the connection inactive, templates by their NONE state and client port
// 0, the time left as the timeout.
func TestAdoptionRecords(t *testing.T) {
	ap := netip.MustParseAddrPort
	got := adoptionRecords([]dataplane.Conn{
		{State: "ESTABLISHED", Protocol: lvs.TCP, Client: ap("10.77.5.1:40000"), Virtual: ap("10.77.1.100:80"), Real: ap("10.77.0.11:80"), Expires: 899 * time.Second},
		{State: "FIN_WAIT", Protocol: lvs.TCP, Client: ap("10.77.5.1:40001"), Virtual: ap("10.77.1.100:80"), Real: ap("10.77.0.12:80"), Expires: 60 * time.Second},
		{State: "UDP", Protocol: lvs.UDP, Client: ap("10.77.5.1:5000"), Virtual: ap("10.77.1.100:53"), Real: ap("10.77.0.12:53"), Expires: 0},
		{State: "NONE", Protocol: lvs.TCP, Client: ap("10.77.5.0:0"), Virtual: ap("10.77.1.100:443"), Real: ap("10.77.0.11:443"), Expires: 300 * time.Second},
		{State: "ESTABLISHED", Protocol: 132, Client: ap("10.77.5.1:9"), Virtual: ap("10.77.1.100:9"), Real: ap("10.77.0.11:9")},
	})
	assert.Equal(t, []ipvssync.Conn{
		{Protocol: 6, State: ipvssync.TCPEstablished, Client: ap("10.77.5.1:40000"), Virtual: ap("10.77.1.100:80"), Dest: ap("10.77.0.11:80"), Timeout: 899 * time.Second},
		{Protocol: 6, State: ipvssync.TCPFinWait, Flags: ipvssync.Inactive, Client: ap("10.77.5.1:40001"), Virtual: ap("10.77.1.100:80"), Dest: ap("10.77.0.12:80"), Timeout: 60 * time.Second},
		{Protocol: 17, Flags: ipvssync.Inactive, Client: ap("10.77.5.1:5000"), Virtual: ap("10.77.1.100:53"), Dest: ap("10.77.0.12:53"), Timeout: time.Second},
		{Protocol: 6, Flags: ipvssync.Template | ipvssync.Inactive, Client: ap("10.77.5.0:0"), Virtual: ap("10.77.1.100:443"), Dest: ap("10.77.0.11:443"), Timeout: 300 * time.Second},
	}, got, "SCTP is left to IPVS: the XDP data plane does not carry it")
}

const adoptConfig = `
virtual_server 10.77.1.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.77.0.11 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.77.0.12 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
}
`

// A director that runs the kernel's IPVS (NAT, as keepalived would have
// made it) carries 20 long downloads; xlb starts on it with the XDP data
// plane: it adopts IPVS's connections, the downloads go on through XDP
// (IPVS's counters stop, xlb's move) and complete byte for byte, and new
// connections go through XDP. (The 6.1 VM: it needs the kernel's IPVS.)
func TestAdoptIPVSDirector(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if out, err := exec.Command("modprobe", "ip_vs").CombinedOutput(); err != nil {
		if why := testutil.IPVSMissing(); why != "" && os.Getenv("VMTEST") == "" {
			t.Skipf("%s; make vmtest KERNEL=6.1 runs this", why)
		}
		t.Fatalf("modprobe ip_vs: %v: %s", err, out)
	}
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: true, NAT: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	require.NoError(t, topo.ServeHTTP(80))
	ipvsadm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"netns", "exec", topo.Director.Name, "ipvsadm"}, args...)...).CombinedOutput()
		require.NoError(t, err, "ipvsadm %v: %s", args, out)
		return string(out)
	}
	require.NoError(t, topo.Director.IP("addr", "add", "10.77.1.100/32", "dev", "lo"))
	require.NoError(t, topo.Director.IP("link", "set", "lo", "up"))
	ipvsadm("-A", "-t", "10.77.1.100:80", "-s", "rr")
	ipvsadm("-a", "-t", "10.77.1.100:80", "-r", "10.77.0.11:80", "-m")
	ipvsadm("-a", "-t", "10.77.1.100:80", "-r", "10.77.0.12:80", "-m")
	ipvsInPkts := func() uint64 {
		for _, l := range strings.Split(ipvsadm("-Ln", "--stats", "--exact"), "\n") {
			f := strings.Fields(l)
			if len(f) >= 4 && f[0] == "TCP" && f[1] == "10.77.1.100:80" {
				n, err := strconv.ParseUint(f[3], 10, 64)
				require.NoError(t, err, "%q", l)
				return n
			}
		}
		t.Fatal("the IPVS service is not listed")
		return 0
	}

	// 16 MiB at 64 kB/s: 260 s each, far longer than the daemon takes to
	// start and the 6 s of the check. The daemon alone took 25 s to load
	// its programs in the TCG VM on an idle host, and more than 45 s in
	// CI beside a second VM; once checked, they read the rest at full
	// speed.
	const downloads, size = 20, 16 << 20
	dl := startDownloads(t, topo, downloads, size, 250*time.Millisecond, 420*time.Second)
	require.Eventually(t, func() bool {
		return strings.Count(ipvsadm("-Lnc"), "ESTABLISHED") >= downloads
	}, 20*time.Second, 100*time.Millisecond, "the downloads are not on IPVS")

	cfg := filepath.Join(t.TempDir(), "keepalived.conf")
	require.NoError(t, os.WriteFile(cfg, []byte(adoptConfig), 0o644))
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfg, Interfaces: []string{"eth0"}, Dataplane: "xdp"})
	require.Contains(t, d.logs(), "adopted the kernel's IPVS connections")
	require.Regexp(t, `adopted=(\d\d+)`, d.logs())

	// From here XDP carries them: IPVS sees nothing more, the downloads
	// go on, xlb's reals count their packets. (The kernel's counters
	// that ipvsadm --stats shows are summed by its estimator every 2 s:
	// the first reading waits until they include the adoption.)
	time.Sleep(3 * time.Second)
	before, ipvsBefore := dl.progress(), ipvsInPkts()
	st0 := d.status(t)
	time.Sleep(3 * time.Second)
	ipvsAfter := ipvsInPkts()
	st1 := d.status(t)
	for i, n := range dl.progress() {
		assert.Less(t, n, int64(size), "download %d was over: it proves nothing", i)
		assert.Greater(t, n, before[i], "download %d did not move on after xlb started", i)
	}
	var in0, in1 uint64
	for j := range st1.Services[0].Reals {
		in0 += st0.Services[0].Reals[j].Counters.Packets
		in1 += st1.Services[0].Reals[j].Counters.Packets
	}
	t.Logf("in 3 s (from 3 s after the adoption): IPVS forwarded %d packets of the service, XDP %d; XDP passed or dropped: %v", ipvsAfter-ipvsBefore, in1-in0, st1.Reasons)
	assert.Greater(t, in1-in0, uint64(10*downloads), "XDP does not carry the adopted connections")
	assert.Zero(t, ipvsAfter-ipvsBefore, "IPVS still carries the connections")

	// New connections go through XDP.
	conns0 := st1.Services[0].Counters.Conns
	c := topo.HTTPClient()
	for range 5 {
		_, err := testutil.Get(context.Background(), c, "http://10.77.1.100/")
		require.NoError(t, err)
	}
	assert.GreaterOrEqual(t, d.status(t).Services[0].Counters.Conns-conns0, uint64(5))

	for i, err := range dl.finish() {
		assert.NoError(t, err, "download %d", i)
	}
}
