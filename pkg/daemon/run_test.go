package daemon

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/probe"
)

const drConfig = `! written by TestRunDaemon
global_defs {
    router_id xlb-test
}

vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.77.1.100/32
    }
}

virtual_server 10.77.1.100 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP
%s
}
`

func realBlock(addr string, weight int) string {
	return fmt.Sprintf(`    real_server %s 80 {
        weight %d
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
`, addr, weight)
}

func (d *proc) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

func (d *proc) status(t *testing.T) control.Status {
	st, err := control.NewClient(d.socket).Status()
	require.NoError(t, err)
	return st
}

// healthy waits until the reals' health and next hops are as wanted.
func (d *proc) waitReals(t *testing.T, want map[string]bool) {
	require.Eventually(t, func() bool {
		st := d.status(t)
		if len(st.Services) != 1 {
			return false
		}
		got := map[string]bool{}
		for _, r := range st.Services[0].Reals {
			got[r.Addr] = r.Healthy && r.InService && r.Resolved
		}
		return assert.ObjectsAreEqual(want, got)
	}, 15*time.Second, 50*time.Millisecond, "reals never became %v", want)
}

func count(names []string) map[string]int {
	out := map[string]int{}
	for _, n := range names {
		out[n]++
	}
	return out
}

func getN(t *testing.T, topo *testutil.DR, n int) []string {
	c := topo.HTTPClient()
	var out []string
	for i := range n {
		name, err := testutil.Get(context.Background(), c, "http://10.77.1.100/")
		require.NoError(t, err, "request %d", i)
		out = append(out, name)
	}
	return out
}

// startLoad is a client of the VIP making one request after another.
func startLoad(topo *testutil.DR) *testutil.Load {
	c := topo.HTTPClient()
	c.Timeout = 2 * time.Second
	return testutil.StartLoad(c, "http://10.77.1.100/", 20000)
}

func TestRunDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	testutil.RequireXDPKernel(t)
	// Three reals and a fourth host as the sorry server.
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 4, Native: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	require.NoError(t, topo.ServeHTTP(80))

	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(body string) {
		require.NoError(t, os.WriteFile(cfgPath, []byte(body), 0o644))
	}
	reals := func(w1, w2, w3 int) string {
		return "    sorry_server 10.77.0.14 80\n" + realBlock("10.77.0.11", w1) + realBlock("10.77.0.12", w2) + realBlock("10.77.0.13", w3)
	}
	write(fmt.Sprintf(drConfig, reals(3, 2, 1)))
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath})
	all := map[string]bool{"10.77.0.11": true, "10.77.0.12": true, "10.77.0.13": true}
	d.waitReals(t, all)
	// VI_1 is alone on its link: after the master-down interval it is
	// MASTER and the VIP is on the director's eth0.
	require.Eventually(t, func() bool {
		st := d.status(t)
		return len(st.VRRP) == 1 && st.VRRP[0].State == "MASTER"
	}, 10*time.Second, 50*time.Millisecond)
	vipOnDirector := func() bool {
		out, err := exec.Command("ip", "-n", topo.Director.Name, "-o", "addr", "show", "dev", "eth0").CombinedOutput()
		require.NoError(t, err)
		return strings.Contains(string(out), "10.77.1.100/32")
	}
	assert.True(t, vipOnDirector(), "the MASTER holds the VIP")

	assert.Equal(t, map[string]int{"r1": 30, "r2": 20, "r3": 10}, count(getN(t, topo, 60)))

	// xlb status's report: the service, its reals and the VRRP role.
	st := d.status(t)
	require.Len(t, st.Services, 1)
	assert.Equal(t, "TCP 10.77.1.100:80 wrr", fmt.Sprintf("%s %s:%d %s", st.Services[0].Protocol, st.Services[0].Addr, st.Services[0].Port, st.Services[0].Scheduler))
	assert.Equal(t, "10.77.0.11", st.Services[0].Reals[0].Addr)
	assert.False(t, st.Services[0].Standby)
	require.Len(t, st.VRRP, 1)
	assert.Equal(t, control.VRRPInstance{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 100, State: "MASTER"}, st.VRRP[0])

	// r1's server dies under load. Its HTTP_GET (delay_loop 1, retry 1,
	// delay_before_retry 1) takes it out within about 2 s; after that no
	// request goes to it and none fails.
	load := startLoad(topo)
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, topo.StopHTTP(0))
	stopped := time.Now()
	d.waitReals(t, map[string]bool{"10.77.0.11": false, "10.77.0.12": true, "10.77.0.13": true})
	detected := time.Now()
	t.Logf("detected after %v", detected.Sub(stopped))
	time.Sleep(time.Second)
	after := load.Since(detected)
	assert.NotEmpty(t, after)
	if !assert.Empty(t, testutil.Failures(after), "requests failed after the down real left the pool") {
		t.Logf("data plane reasons: %v; detected %v", d.status(t).Reasons, detected)
		for _, r := range load.Since(stopped.Add(-time.Second)) {
			t.Logf("%s %s %v", r.At.Format("15:04:05.000"), r.Name, r.Err)
		}
	}
	for _, r := range after {
		assert.NotEqual(t, "r1", r.Name)
	}
	assert.Contains(t, d.logs(), "real down")

	// It comes back and is re-added.
	require.NoError(t, topo.RestartHTTP(0))
	d.waitReals(t, all)
	back := time.Now()
	time.Sleep(500 * time.Millisecond)
	assert.Contains(t, count(testutil.Names(load.Since(back))), "r1", "the recovered real gets requests again")
	assert.Empty(t, testutil.Failures(load.Since(back)))

	// SIGHUP with changed weights, under load: nothing fails.
	hup := time.Now()
	write(fmt.Sprintf(drConfig, reals(3, 1, 1)))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(d.logs(), "reloaded") }, 5*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	assert.Empty(t, testutil.Failures(load.Since(hup)), "requests failed across the reload")
	st = d.status(t)
	assert.Equal(t, 1, st.Services[0].Reals[1].Weight)

	// An invalid file (a block left open), under load: refused, the
	// running state unchanged. (A bad value, such as weight -4, is not:
	// keepalived ignores the line with a logged error, and so does xlb,
	// with a warning, unless --strict.)
	bad := time.Now()
	write(fmt.Sprintf(drConfig, "    real_server 10.77.0.12 80 {\n        weight 2\n"))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(d.logs(), "reload refused") }, 5*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	assert.Empty(t, testutil.Failures(load.Since(bad)))
	assert.Contains(t, d.logs(), "keepalived.conf:")
	assert.Len(t, d.status(t).Services[0].Reals, 3)
	load.End()

	// All reals down: the sorry server takes over.
	for i := range 3 {
		require.NoError(t, topo.StopHTTP(i))
	}
	require.Eventually(t, func() bool { return d.status(t).Services[0].SorryServer == "10.77.0.14:80" }, 15*time.Second, 50*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, map[string]int{"r4": 5}, count(getN(t, topo, 5)))
	assert.Contains(t, d.logs(), "quorum lost")

	// SIGTERM: the daemon exits 0 and detaches.
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-d.done:
		require.NoError(t, err, d.logs())
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop")
	}
	assert.Contains(t, d.logs(), "detached xdp")
	assert.False(t, vipOnDirector(), "stopping gives the VIP up")
	_, err = testutil.Get(context.Background(), topo.HTTPClient(), "http://10.77.1.100/")
	assert.Error(t, err, "no director: the VIP is not served")
}

// xlbadm on a director started with no configuration: ipvsadm commands
// from an LVS tutorial make real HTTP through the VIP work, and the
// listings count the requests.
//
// It runs on each data plane the kernel has: XDP, and IPVS (in the test
// VMs), where the director holds the VIP itself (IPVS only sees packets
// for local addresses).
func TestXlbadmDrivesDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	t.Run("xdp", func(t *testing.T) {
		testutil.RequireXDPKernel(t)
		testXlbadm(t, "xdp")
	})
	t.Run("ipvs", func(t *testing.T) {
		testutil.RequireIPVS(t, probe.IPVS())
		testXlbadm(t, "ipvs")
	})
}

func testXlbadm(t *testing.T, dp string) {
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: dp == "xdp"})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	require.NoError(t, topo.ServeHTTP(80))
	if dp == "ipvs" {
		require.NoError(t, topo.Director.IP("addr", "add", "10.77.1.100/32", "dev", "lo"))
	}
	d := startDaemon(t, topo.Director, Options{Interfaces: []string{"eth0"}, Metrics: "127.0.0.1:9610", Dataplane: dp})
	c := control.NewClient(d.socket)
	adm := func(stdin string, args ...string) (string, string) {
		r, err := c.Ipvsadm(args, stdin)
		require.NoError(t, err)
		require.Equal(t, 0, r.Code, "ipvsadm %v: %s", args, r.Stderr)
		return r.Stdout, r.Stderr
	}
	adm("", "-A", "-t", "10.77.1.100:80", "-s", "rr")
	adm("", "-a", "-t", "10.77.1.100:80", "-r", "10.77.0.11:80", "-g", "-w", "1")
	adm("", "-a", "-t", "10.77.1.100:80", "-r", "10.77.0.12:80", "-g", "-w", "1")
	require.Eventually(t, func() bool {
		st := d.status(t)
		return len(st.Services) == 1 && len(st.Services[0].Reals) == 2 && st.Services[0].Reals[0].Resolved && st.Services[0].Reals[1].Resolved
	}, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, map[string]int{"r1": 5, "r2": 5}, count(getN(t, topo, 10)))

	// Closed connections are inactive (FIN_WAIT), once the client's last
	// FIN has crossed the director.
	want := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.77.1.100:80 rr
  -> 10.77.0.11:80                Route   1      0          5         
  -> 10.77.0.12:80                Route   1      0          5         
`
	var out string
	assert.Eventually(t, func() bool {
		out, _ = adm("", "-Ln")
		return out == want
	}, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, want, out)
	// Conns counted by the data plane (packet counts depend on TCP);
	// IPVS publishes its counters at its estimator's 2 s tick.
	require.Eventually(t, func() bool {
		out, _ = adm("", "-Ln", "--stats")
		return regexp.MustCompile(`(?m)^TCP  10\.77\.1\.100:80 +10 +\d+ +0 +\d+ +0$`).MatchString(out)
	}, 10*time.Second, 100*time.Millisecond)
	assert.Regexp(t, `(?m)^  -> 10\.77\.0\.11:80 +5 +\d+ +0 +\d+ +0$`, out)

	// The metrics endpoint, read with Prometheus' own text parser.
	mc := &http.Client{Transport: &http.Transport{DialContext: topo.Director.DialContext}, Timeout: 5 * time.Second}
	resp, err := mc.Get("http://127.0.0.1:9610/metrics")
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	metric := func(name, real string) float64 {
		f := families[name]
		require.NotNil(t, f, name)
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "real" && l.GetValue() == real {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatalf("%s{real=%q} not found", name, real)
		return 0
	}
	assert.EqualValues(t, 5, metric("xlb_real_connections_total", "10.77.0.11:80"))
	assert.EqualValues(t, 5, metric("xlb_real_inactive_connections", "10.77.0.12:80"))
	assert.EqualValues(t, 1, metric("xlb_real_healthy", "10.77.0.11:80"))
	assert.EqualValues(t, 1, metric("xlb_real_weight", "10.77.0.12:80"))
	if dp == "xdp" {
		require.NotNil(t, families["xlb_dataplane_info"])
		for _, l := range families["xlb_dataplane_info"].GetMetric()[0].GetLabel() {
			if l.GetName() == "mode" {
				assert.Equal(t, "native", l.GetValue())
			}
		}
	}
	assert.Equal(t, dp, d.status(t).Dataplane)

	adm("", "-Z")
	out, _ = adm("", "-Ln", "--stats")
	assert.Regexp(t, `(?m)^TCP  10\.77\.1\.100:80 +0 +0 +0 +0 +0$`, out, "-Z zeroes the listed counters")

	adm("", "-e", "-t", "10.77.1.100:80", "-r", "10.77.0.12:80", "-g", "-w", "0")
	assert.Equal(t, map[string]int{"r1": 4}, count(getN(t, topo, 4)), "weight 0 quiesces")
	saved, _ := adm("", "-Sn")
	assert.Equal(t, "-A -t 10.77.1.100:80 -s rr\n-a -t 10.77.1.100:80 -r 10.77.0.11:80 -g -w 1\n-a -t 10.77.1.100:80 -r 10.77.0.12:80 -g -w 0\n", saved)
	adm("", "-d", "-t", "10.77.1.100:80", "-r", "10.77.0.12:80")
	adm("", "-C")
	out, _ = adm("", "-Ln")
	assert.NotContains(t, out, "10.77.1.100")
	_, err = testutil.Get(context.Background(), topo.HTTPClient(), "http://10.77.1.100/")
	assert.Error(t, err, "cleared: the VIP is not served")
	adm(saved, "-R")
	out, _ = adm("", "-Sn")
	assert.Equal(t, saved, out)
	assert.Equal(t, map[string]int{"r1": 3}, count(getN(t, topo, 3)))

	r, err := c.Ipvsadm([]string{"-A", "-t", "10.77.1.100:80", "-s", "rr"}, "")
	require.NoError(t, err)
	assert.NotZero(t, r.Code)
	assert.Contains(t, r.Stderr, "Service already exists")

	// An IPv6 persistent service: both data planes have it.
	r, err = c.Ipvsadm([]string{"-A", "-t", "[2001:db8::1]:80", "-s", "rr", "-p", "60", "-M", "64"}, "")
	require.NoError(t, err)
	assert.Equal(t, 0, r.Code, r.Stderr)

	// A tunnel across families: both data planes take it.
	r, err = c.Ipvsadm([]string{"-a", "-t", "[2001:db8::1]:80", "-r", "10.77.0.14:80", "-i"}, "")
	require.NoError(t, err)
	assert.Equal(t, 0, r.Code, r.Stderr)

	// What only IPVS has: thresholds, ops; the XDP data plane refuses
	// them, each by name.
	ipvsOnly := [][]string{
		{"-a", "-t", "10.77.1.100:80", "-r", "10.77.0.13:80", "-g", "-w", "1", "-x", "100", "-y", "10"},
		{"-A", "-u", "10.77.1.100:53", "-s", "rr", "-o"},
	}
	for _, args := range ipvsOnly {
		r, err := c.Ipvsadm(args, "")
		require.NoError(t, err)
		if dp == "xdp" {
			assert.Equal(t, 255, r.Code, "%v", args)
			assert.Contains(t, r.Stderr, "supported by the XDP data plane", "%v", args)
		} else {
			assert.Equal(t, 0, r.Code, "%v: %s", args, r.Stderr)
		}
	}
	out, _ = adm("", "-Ln", "--thresholds")
	if dp == "ipvs" {
		assert.Contains(t, out, "  -> 10.77.0.13:80                100        10         0          0         \n")
		out, _ = adm("", "-Ln")
		assert.Contains(t, out, "UDP  10.77.1.100:53 rr ops\n")
	} else {
		assert.NotContains(t, out, "10.77.0.13:80", "nothing half-applied")
		out, _ = adm("", "-Ln")
		assert.NotContains(t, out, "ops", "nothing half-applied")
	}
	assert.Contains(t, out, "  -> 10.77.0.14:80                Tunnel  1")
	assert.Contains(t, out, "TCP  [2001:db8::1]:80 rr persistent 60 mask 64\n")
}

// A vrrp_script's weight moves the instance's effective priority as its
// script succeeds and fails (keepalived's rules), shown by xlb status.
func TestVRRPTrackScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 1, Native: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	dir := t.TempDir()
	flag := filepath.Join(dir, "healthy")
	require.NoError(t, os.WriteFile(flag, nil, 0o644))
	cfgPath := filepath.Join(dir, "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
global_defs {
    script_user root
}
vrrp_script chk_flag {
    script "/usr/bin/test -f %s"
    interval 1
    weight -60
    fall 1
    rise 1
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 150
    advert_int 1
    virtual_ipaddress {
        10.77.1.100/32
    }
    track_script {
        chk_flag
    }
}
`, flag)), 0o644))
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath})
	prio := func() uint8 {
		st := d.status(t)
		require.Len(t, st.VRRP, 1)
		return st.VRRP[0].Priority
	}
	require.Eventually(t, func() bool { return prio() == 150 }, 5*time.Second, 50*time.Millisecond)
	require.NoError(t, os.Remove(flag))
	require.Eventually(t, func() bool { return prio() == 90 }, 5*time.Second, 50*time.Millisecond, "150 - 60 while the script fails")
	require.NoError(t, os.WriteFile(flag, nil, 0o644))
	require.Eventually(t, func() bool { return prio() == 150 }, 5*time.Second, 50*time.Millisecond)
}

// track_file, track_interface and a vrrp_sync_group in the daemon: a
// file's number times its weight moves the priority, a tracked interface
// going down takes its weight off, and a member of a sync group in FAULT
// takes the other member to FAULT with it.
func TestVRRPTrackFileInterfaceSyncGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 1, Native: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	require.NoError(t, topo.Director.IP("link", "add", "trk0", "type", "veth", "peer", "name", "trk1"))
	require.NoError(t, topo.Director.IP("link", "set", "trk1", "up"))
	require.NoError(t, topo.Director.IP("link", "set", "trk0", "up"))
	dir := t.TempDir()
	bonus, stop := filepath.Join(dir, "bonus"), filepath.Join(dir, "stop")
	notifyLog, notifySh := filepath.Join(dir, "notify.log"), filepath.Join(dir, "notify.sh")
	require.NoError(t, os.WriteFile(notifySh, []byte("#!/bin/sh\necho \"$@\" >> "+notifyLog+"\n"), 0o755))
	cfgPath := filepath.Join(dir, "keepalived.conf")
	conf := func(bonusWeight int, notify string) []byte {
		return []byte(fmt.Sprintf(`
global_defs {
    script_user root
}
track_file bonus {
    file "%s"
    weight %d
    init_file 5
}
vrrp_track_file stop {
    file "%s"
    weight 0
    init_file 0 overwrite
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 61
    priority 100
    advert_int 1
    virtual_ipaddress {
        10.77.1.101/32
    }
    track_file {
        bonus
    }
    track_interface {
        trk0 weight -50
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 62
    priority 100
    advert_int 1
    virtual_ipaddress {
        10.77.1.102/32
    }
}
vrrp_instance VI_3 {
    interface eth0
    virtual_router_id 63
    priority 100
    advert_int 1
    virtual_ipaddress {
        10.77.1.103/32
    }
    track_file {
        stop
    }
}
vrrp_sync_group G {
    group {
        VI_2
        VI_3
    }
    notify %s
}
`, bonus, bonusWeight, stop, notify))
	}
	require.NoError(t, os.WriteFile(cfgPath, conf(2, notifySh), 0o644))
	require.NoError(t, os.WriteFile(stop, []byte("7\n"), 0o644)) // overwritten by init_file
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath})
	inst := func() map[string]string {
		out := map[string]string{}
		for _, in := range d.status(t).VRRP {
			out[in.Name] = fmt.Sprintf("%s %d", in.State, in.Priority)
		}
		return out
	}
	// init_file wrote 5 (5 x 2 = +10) and 0; with no peer all become MASTER.
	require.Eventually(t, func() bool {
		return assert.ObjectsAreEqual(map[string]string{"VI_1": "MASTER 110", "VI_2": "MASTER 100", "VI_3": "MASTER 100"}, inst())
	}, 10*time.Second, 50*time.Millisecond, "got %v", inst)
	b, err := os.ReadFile(stop)
	require.NoError(t, err)
	assert.Equal(t, "0\n", string(b), "init_file ... overwrite")

	require.NoError(t, os.WriteFile(bonus, []byte("-20\n"), 0o644))
	require.Eventually(t, func() bool { return inst()["VI_1"] == "MASTER 60" }, 5*time.Second, 50*time.Millisecond, "100 + (-20 x 2)")
	require.NoError(t, topo.Director.IP("link", "set", "trk0", "down"))
	require.Eventually(t, func() bool { return inst()["VI_1"] == "MASTER 10" }, 5*time.Second, 50*time.Millisecond, "60 - 50 with trk0 down")
	require.NoError(t, topo.Director.IP("link", "set", "trk0", "up"))
	require.Eventually(t, func() bool { return inst()["VI_1"] == "MASTER 60" }, 5*time.Second, 50*time.Millisecond)

	// VI_3's unweighted file fails: VI_3 and, through the group, VI_2
	// go to FAULT and drop their VIPs; VI_1 is not in the group.
	require.NoError(t, os.WriteFile(stop, []byte("1\n"), 0o644))
	require.Eventually(t, func() bool {
		st := inst()
		return strings.HasPrefix(st["VI_2"], "FAULT") && strings.HasPrefix(st["VI_3"], "FAULT") && st["VI_1"] == "MASTER 60"
	}, 5*time.Second, 50*time.Millisecond, "got %v", inst)
	addrs := func() string {
		out, err := exec.Command("ip", "-n", topo.Director.Name, "-o", "addr", "show", "dev", "eth0").CombinedOutput()
		require.NoError(t, err)
		return string(out)
	}
	assert.NotContains(t, addrs(), "10.77.1.102")
	assert.NotContains(t, addrs(), "10.77.1.103")
	assert.Contains(t, addrs(), "10.77.1.101")
	require.NoError(t, os.WriteFile(stop, []byte("0\n"), 0o644))
	require.Eventually(t, func() bool {
		st := inst()
		return st["VI_2"] == "MASTER 100" && st["VI_3"] == "MASTER 100"
	}, 10*time.Second, 50*time.Millisecond, "got %v", inst)
	// The group's notify saw it go MASTER, FAULT, BACKUP, MASTER.
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(notifyLog)
		return strings.Count(string(b), "GROUP G MASTER 0") == 2
	}, 5*time.Second, 50*time.Millisecond)
	b, err = os.ReadFile(notifyLog)
	require.NoError(t, err)
	assert.Equal(t, "GROUP G BACKUP 0\nGROUP G MASTER 0\nGROUP G FAULT 0\nGROUP G BACKUP 0\nGROUP G MASTER 0\n", string(b))

	// A reload that changes only a tracker's weight and the group's notify
	// script: no instance restarts (every MASTER stays MASTER, no VIP
	// leaves, no transition), the new weight applies, init_file overwrites
	// nothing on a reload, and the next group event runs the new script.
	require.NoError(t, os.WriteFile(stop, []byte("00\n"), 0o644))
	notify2Log, notify2Sh := filepath.Join(dir, "notify2.log"), filepath.Join(dir, "notify2.sh")
	require.NoError(t, os.WriteFile(notify2Sh, []byte("#!/bin/sh\necho \"$@\" >> "+notify2Log+"\n"), 0o755))
	require.NoError(t, os.WriteFile(cfgPath, conf(3, notify2Sh), 0o644))
	transitions := strings.Count(d.logs(), "vrrp transition")
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(d.logs(), "reloaded") }, 5*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return inst()["VI_1"] == "MASTER 40" }, 5*time.Second, 50*time.Millisecond,
		"100 + (-20 x 3) after the reload; got %v", inst)
	assert.Equal(t, map[string]string{"VI_1": "MASTER 40", "VI_2": "MASTER 100", "VI_3": "MASTER 100"}, inst())
	assert.Equal(t, transitions, strings.Count(d.logs(), "vrrp transition"), "an instance went through a transition on the reload")
	for _, vip := range []string{"10.77.1.101", "10.77.1.102", "10.77.1.103"} {
		assert.Contains(t, addrs(), vip)
	}
	b, err = os.ReadFile(stop)
	require.NoError(t, err)
	assert.Equal(t, "00\n", string(b), "init_file ... overwrite rewrote the file on a reload")
	require.NoError(t, os.WriteFile(stop, []byte("1\n"), 0o644))
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(notify2Log)
		return string(b) == "GROUP G FAULT 0\n"
	}, 5*time.Second, 50*time.Millisecond, "the reloaded group notify script did not run")
	b, err = os.ReadFile(notifyLog)
	require.NoError(t, err)
	assert.Equal(t, 5, strings.Count(string(b), "GROUP G"), "the old notify script ran after the reload")
}

// An IPv6 vrrp_instance in the daemon: VRRPv3 from the link-local address,
// MASTER alone on its link, the VIP added as keepalived adds it (nodad).
func TestVRRPIPv6Instance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 1, Native: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6", "net.ipv6.conf.eth0.disable_ipv6"} {
		require.NoError(t, topo.Director.Sysctl(k, "0"))
	}
	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`
vrrp_instance VI_6 {
    interface eth0
    virtual_router_id 66
    priority 100
    advert_int 0.1
    virtual_ipaddress {
        fd00:77::100
    }
}
`), 0o644))
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath})
	require.Eventually(t, func() bool { return d.vrrpState(t) == "MASTER" }, 10*time.Second, 20*time.Millisecond, "%s", d.logs)
	out, err := exec.Command("ip", "-n", topo.Director.Name, "-6", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	require.NoError(t, err)
	assert.Contains(t, string(out), "fd00:77::100/128")
	assert.Contains(t, string(out), "nodad")
}
