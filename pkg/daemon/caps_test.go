package daemon

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/control"
)

// unitCaps is the unit file's CapabilityBoundingSet, in setpriv's form
// (lower case, without "cap_").
func unitCaps(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../contrib/systemd/xlb.service")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapabilityBoundingSet="); ok {
			var out []string
			for _, c := range strings.Fields(v) {
				out = append(out, strings.TrimPrefix(strings.ToLower(c), "cap_"))
			}
			return out
		}
	}
	t.Fatal("no CapabilityBoundingSet in the unit")
	return nil
}

const capsConfig = `
global_defs {
    lvs_sync_daemon eth0 VI_1
    enable_script_security
    script_user nobody
}
vrrp_script chk {
    script "/bin/true"
    interval 1
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        10.77.1.100/32
    }
    track_script {
        chk
    }
    notify_master "/bin/true"
}
virtual_server 10.77.1.100 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.77.0.11 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.77.0.12 80 {
        weight 1
        MISC_CHECK { misc_path "/bin/true" }
    }
}
`

// startWithCaps runs xlb as root with only caps in its bounding set (as
// the unit's CapabilityBoundingSet leaves it) and reports whether it
// became a working director: VRRP MASTER, both reals healthy (a TCP check
// and a MISC_CHECK run as script_user), HTTP through the VIP, the sync
// daemons up, and metrics on port 961 (below 1024).
func startWithCaps(t *testing.T, topo *testutil.DR, caps []string) (ok bool, why string) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keepalived.conf")
	require.NoError(t, os.WriteFile(cfg, []byte(capsConfig), 0o644))
	cmd, o := childCmd(t, topo.Director, Options{ConfigFile: cfg, Metrics: "127.0.0.1:961"}, nil)
	set := "-all"
	for _, c := range caps {
		set += ",+" + c
	}
	cmd.Args = []string{"nsenter", "--net=/run/netns/" + topo.Director.Name, "setpriv", "--bounding-set", set, "--inh-caps", "-all", "--", os.Args[0]}
	p, err := exec.LookPath("nsenter")
	require.NoError(t, err)
	cmd.Path = p
	d, err := tryChild(t, cmd, o)
	// Stopped (and detached) before the next try attaches.
	defer func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}()
	if err != nil {
		return false, err.Error()
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		st, err := control.NewClient(d.socket).Status()
		if err != nil {
			// Stopped by what it lacks after it answered (a director
			// should not; a lost cap must fail the try, not the test).
			select {
			case werr := <-d.done:
				d.done <- werr
				return false, fmt.Sprintf("daemon exited (%v): %s", werr, d.logs())
			default:
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		up := 0
		for _, s := range st.Services {
			for _, r := range s.Reals {
				if r.Healthy {
					up++
				}
			}
		}
		sync := st.Sync != nil && len(st.Sync.Daemons) == 2
		// On XDP: where it cannot load, xlb falls back on IPVS (6.1
		// without CAP_BPF does), which is not what the unit is for.
		if st.Dataplane == "xdp" && len(st.VRRP) == 1 && st.VRRP[0].State == "MASTER" && up == 2 && sync {
			_, err := testutil.Get(context.Background(), topo.HTTPClient(), "http://10.77.1.100/")
			mc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: topo.Director.DialContext}}
			out, merr := testutil.Get(context.Background(), mc, "http://127.0.0.1:961/metrics")
			if err == nil && merr == nil && strings.Contains(out, "xlb_vrrp_state") && holdsVIP(t, topo.Director) {
				return true, ""
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	st, err := control.NewClient(d.socket).Status()
	return false, fmt.Sprintf("status %+v (%v); log:\n%s", st, err, d.logs())
}

// The unit's CapabilityBoundingSet is enough for a director that uses
// what needs privileges (XDP and TC programs pinned in bpffs, VRRP's raw
// sockets and VIPs, the sync daemons' multicast and socket buffers,
// health checks and scripts run as script_user, metrics on a low port),
// and it is the minimum: without any one capability it lists, that
// director does not come up (CAP_KILL, for scripts that outlive their
// timeout, is not exercised). In the 6.1 VM too.
func TestUnitCapabilities(t *testing.T) {
	topo := testutil.NewDRServing(t)
	caps := unitCaps(t)
	ok, why := startWithCaps(t, topo, caps)
	require.True(t, ok, "with the unit's capabilities %v: %s", caps, why)
	for _, c := range caps {
		if c == "kill" {
			continue
		}
		var less []string
		for _, k := range caps {
			if k != c {
				less = append(less, k)
			}
		}
		ok, why := startWithCaps(t, topo, less)
		t.Logf("without %s: %s", c, firstLines(why, 2))
		assert.False(t, ok, "works without CAP_%s: the unit need not list it", strings.ToUpper(c))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ")
}
