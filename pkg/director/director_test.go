package director

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/dataplane/ipvs"
	"github.com/xlbproject/xlb/pkg/dataplane/xdp"
	"github.com/xlbproject/xlb/pkg/ipvsadm"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// fakeDataplane records what the director applies (a fake for the logic
// only; the real data plane is exercised in cmd/xlb's end-to-end tests).
type fakeDataplane struct {
	mu       sync.Mutex
	fail     error // refuse every Apply with it
	applied  [][]dataplane.Service
	standby  []map[netip.Addr]bool
	timeouts dataplane.Timeouts
	defence  dataplane.Defence
	caps     *dataplane.Caps // fakeCaps unless set
}

// fakeCaps are the XDP data plane's, as far as these tests need.
var fakeCaps = dataplane.Caps{Name: "the XDP data plane", Schedulers: sched.Names(sched.InXDP),
	Forwards: []lvs.Forward{lvs.DR, lvs.NAT}, Protocols: []lvs.Protocol{lvs.TCP, lvs.UDP}, Flags: lvs.SchedFlags}

func (f *fakeDataplane) Caps() dataplane.Caps {
	if f.caps != nil {
		return *f.caps
	}
	return fakeCaps
}

func (f *fakeDataplane) SetStandby(vips map[netip.Addr]bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.standby = append(f.standby, vips)
	return nil
}

func (f *fakeDataplane) Apply(s []dataplane.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.applied = append(f.applied, s)
	return nil
}

func (f *fakeDataplane) last() []dataplane.Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied[len(f.applied)-1]
}

// Stats reports what was last applied, as a data plane holds it.
func (f *fakeDataplane) Stats() (dataplane.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var st dataplane.Stats
	if len(f.applied) == 0 {
		return st, nil
	}
	for _, s := range f.applied[len(f.applied)-1] {
		ss := dataplane.ServiceStats{Service: s}
		ss.Service.Reals = nil
		for _, r := range s.Reals {
			ss.Reals = append(ss.Reals, dataplane.RealStats{Real: r, Resolved: true})
		}
		st.Services = append(st.Services, ss)
	}
	return st, nil
}
func (f *fakeDataplane) Conns() ([]dataplane.Conn, error) { return nil, nil }
func (f *fakeDataplane) Close() error                     { return nil }
func (f *fakeDataplane) SetDefence(d dataplane.Defence) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.defence = d
	return d.Check()
}
func (f *fakeDataplane) Defence() (dataplane.DefenceStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return dataplane.DefenceStatus{Defence: f.defence}, nil
}
func (f *fakeDataplane) SetTimeouts(t dataplane.Timeouts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.timeouts = t
	return nil
}
func (f *fakeDataplane) Timeouts() (dataplane.Timeouts, error) { return f.timeouts, nil }

// checks hands each started real's report function to the test.
type checks struct {
	mu      sync.Mutex
	reports map[string]func(Health)
	started map[string]int
	marks   map[string]uint32 // the mark each real's checks got, when not nil
}

func (c *checks) start(ctx context.Context, vs *config.VirtualServer, rs *config.RealServer, mark uint32, report func(Health)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := netip.AddrPortFrom(rs.Addr, rs.Port).String()
	if c.marks != nil {
		c.marks[k] = mark
	}
	c.reports[k] = report
	c.started[k]++
}

func (c *checks) report(t *testing.T, real string, h Health) {
	c.mu.Lock()
	f := c.reports[real]
	c.mu.Unlock()
	require.NotNil(t, f, real)
	f(h)
}

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.ParseBytes("keepalived.conf", []byte(text))
	require.NoError(t, err)
	return cfg
}

const base = `
virtual_server 10.0.0.100 80 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    quorum 3
    hysteresis 1
    sorry_server 10.0.0.50 80
    real_server 10.0.0.11 80 {
        weight 2
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.0.0.12 80 {
        weight 2
        inhibit_on_failure
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.0.0.13 80 {
        weight 1
    }
}
`

func newTest(t *testing.T) (*Director, *fakeDataplane, *checks, *[]string) {
	dp := &fakeDataplane{}
	c := &checks{reports: map[string]func(Health){}, started: map[string]int{}}
	var mu sync.Mutex
	var ran []string
	d := New(t.Context(), Options{Dataplane: dp, Checks: c.start, Scripts: func(s *config.Script, why string) {
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, s.Args[0]+" "+why)
	}})
	return d, dp, c, &ran
}

func weights(svc dataplane.Service) map[string]int32 {
	out := map[string]int32{}
	for _, r := range svc.Reals {
		out[r.String()] = r.Weight
	}
	return out
}

func TestHealthDrivesReals(t *testing.T) {
	d, dp, c, _ := newTest(t)
	require.NoError(t, d.Load(parse(t, base)))
	require.Len(t, dp.last(), 1)
	assert.Equal(t, map[string]int32{"10.0.0.11:80": 2, "10.0.0.12:80": 2, "10.0.0.13:80": 1}, weights(dp.last()[0]))
	assert.Equal(t, "wrr", dp.last()[0].Scheduler)

	c.report(t, "10.0.0.11:80", Health{Up: false, Reason: "connection refused"})
	assert.Equal(t, map[string]int32{"10.0.0.12:80": 2, "10.0.0.13:80": 1}, weights(dp.last()[0]), "a down real is removed")

	c.report(t, "10.0.0.12:80", Health{Up: false})
	// live weight 1 < quorum 3 - hysteresis 1: the sorry server replaces the reals.
	assert.Equal(t, map[string]int32{"10.0.0.50:80": 1}, weights(dp.last()[0]))

	c.report(t, "10.0.0.11:80", Health{Up: true})
	// live 3 < quorum + hysteresis 4: still lost.
	assert.Equal(t, map[string]int32{"10.0.0.50:80": 1}, weights(dp.last()[0]))
	c.report(t, "10.0.0.12:80", Health{Up: true})
	assert.Equal(t, map[string]int32{"10.0.0.11:80": 2, "10.0.0.12:80": 2, "10.0.0.13:80": 1}, weights(dp.last()[0]))

	c.report(t, "10.0.0.12:80", Health{Up: false})
	assert.Equal(t, map[string]int32{"10.0.0.11:80": 2, "10.0.0.12:80": 0, "10.0.0.13:80": 1}, weights(dp.last()[0]),
		"inhibit_on_failure keeps the real with weight 0 (live weight 3 keeps the quorum: 3 >= 3-1)")

	seven := 7
	c.report(t, "10.0.0.12:80", Health{Up: true, Weight: &seven})
	assert.EqualValues(t, 7, weights(dp.last()[0])["10.0.0.12:80"], "misc_dynamic sets the weight")
}

func TestNotifyAndQuorumScripts(t *testing.T) {
	d, _, c, ran := newTest(t)
	cfg := parse(t, `
virtual_server 10.0.0.100 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    quorum 2
    quorum_down "/bin/qdown"
    quorum_up "/bin/qup"
    real_server 10.0.0.11 80 {
        notify_up "/bin/up arg"
        notify_down "/bin/down"
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.0.0.12 80 {
        TCP_CHECK { connect_timeout 1 }
    }
}`)
	require.NoError(t, d.Load(cfg))
	c.report(t, "10.0.0.11:80", Health{Up: false})
	c.report(t, "10.0.0.11:80", Health{Up: true})
	assert.Equal(t, []string{
		"/bin/down notify_down 10.0.0.11:80",
		"/bin/qdown quorum TCP 10.0.0.100:80",
		"/bin/up notify_up 10.0.0.11:80",
		"/bin/qup quorum TCP 10.0.0.100:80",
	}, *ran)
}

func TestReloadKeepsUnchangedHealth(t *testing.T) {
	d, dp, c, _ := newTest(t)
	require.NoError(t, d.Load(parse(t, base)))
	c.report(t, "10.0.0.11:80", Health{Up: false})

	// Weights change, checks do not: 10.0.0.11 stays down, no new checker.
	changed := parse(t, `
virtual_server 10.0.0.100 80 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.11 80 {
        weight 5
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.0.0.12 80 {
        weight 3
        TCP_CHECK { connect_timeout 2 }
    }
}`)
	require.NoError(t, d.Load(changed))
	assert.Equal(t, map[string]int32{"10.0.0.12:80": 3}, weights(dp.last()[0]))
	assert.Equal(t, 1, c.started["10.0.0.11:80"], "unchanged checks are not restarted")
	assert.Equal(t, 2, c.started["10.0.0.12:80"], "changed checks restart")
}

func TestInvalidConfigChangesNothing(t *testing.T) {
	d, dp, _, _ := newTest(t)
	require.NoError(t, d.Load(parse(t, base)))
	n := len(dp.applied)
	err := d.Load(parse(t, `
virtual_server 10.0.0.100 80 {
    lb_algo lblcr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.11 8080 {
    }
}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "keepalived.conf:2: virtual_server 10.0.0.100 80: scheduler lblcr is not supported by the XDP data plane")
	assert.NotContains(t, err.Error(), "lvs_method NAT")
	assert.Len(t, dp.applied, n, "nothing applied")
	st, err := d.Status()
	require.NoError(t, err)
	assert.Len(t, st.Services[0].Reals, 3)
}

func TestLVSTimeoutsApplied(t *testing.T) {
	d, dp, _, _ := newTest(t)
	cfg := parse(t, "global_defs {\n    lvs_timeouts tcp 7200 tcpfin 30 udp 60\n}\n"+base)
	require.NoError(t, d.Load(cfg))
	assert.Equal(t, dataplane.Timeouts{TCP: 7200 * time.Second, TCPFin: 30 * time.Second, UDP: time.Minute}, dp.timeouts)
}

func TestPersistenceConfig(t *testing.T) {
	d, dp, _, _ := newTest(t)
	cfg := parse(t, `
virtual_server 10.0.0.100 80 {
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    persistence_timeout 300
    persistence_granularity 255.255.255.0
    real_server 10.0.0.11 8080 {
    }
}`)
	require.NoError(t, d.Load(cfg))
	svc := dp.last()[0]
	assert.Equal(t, 300*time.Second, svc.Persistence)
	assert.Equal(t, lvs.Netmask(0xffffff00), svc.PersistenceMask)
	assert.Equal(t, lvs.NAT, svc.Reals[0].Forward)
	assert.EqualValues(t, 8080, svc.Reals[0].Port)
}

func TestIpvsadmCommands(t *testing.T) {
	d, dp, _, _ := newTest(t)
	require.NoError(t, d.Load(parse(t, base)))
	run := func(args ...string) (string, string, int) { return d.Ipvsadm(args, "") }

	_, errOut, code := run("-A", "-t", "10.0.0.200:80", "-s", "rr")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = run("-a", "-t", "10.0.0.200:80", "-r", "10.0.0.21:8080", "-m", "-w", "3")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = run("-a", "-t", "10.0.0.200:80", "-r", "10.0.0.22", "-g")
	require.Equal(t, 0, code, errOut)
	last := dp.last()
	require.Len(t, last, 2, "the configured service and the added one")
	assert.Equal(t, "rr", last[1].Scheduler)
	assert.Equal(t, []dataplane.Real{
		{Addr: netip.MustParseAddr("10.0.0.21"), Port: 8080, Weight: 3, Forward: lvs.NAT},
		{Addr: netip.MustParseAddr("10.0.0.22"), Port: 80, Weight: 1, Forward: lvs.DR},
	}, last[1].Reals)

	out, _, code := run("-Ln")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "TCP  10.0.0.100:80 wrr")
	assert.Contains(t, out, "TCP  10.0.0.200:80 rr")
	assert.Contains(t, out, "  -> 10.0.0.21:8080               Masq    3      0          0")

	_, errOut, code = run("-A", "-t", "10.0.0.200:80", "-s", "rr")
	assert.NotZero(t, code)
	assert.Contains(t, errOut, "Service already exists")

	_, errOut, code = run("-e", "-t", "10.0.0.100:80", "-r", "10.0.0.11:80", "-w", "9")
	assert.Equal(t, 255, code)
	assert.Contains(t, errOut, "is defined in keepalived.conf:2")

	_, errOut, code = run("-A", "-t", "10.0.0.201:80", "-s", "lblc")
	assert.NotZero(t, code, "a scheduler the data plane lacks is refused")
	assert.Contains(t, errOut, "lblc")
	out, _, _ = run("-Ln")
	assert.NotContains(t, out, "10.0.0.201", "nothing half-applied")

	_, errOut, code = run("-D", "-t", "10.0.0.200:80")
	require.Equal(t, 0, code, errOut)
	assert.Len(t, dp.last(), 1)

	_, errOut, code = run("--set", "100", "20", "30")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, dataplane.Timeouts{TCP: 100 * time.Second, TCPFin: 20 * time.Second, UDP: 30 * time.Second}, dp.timeouts)
}

// IPVS's estimator: 20 connections and 100 packets of 60 bytes in each
// 2 s period settle at 10 conn/s, 50 packets/s, 3000 bytes/s.
func TestRateEstimator(t *testing.T) {
	var e estimator
	var c dataplane.Counters
	e.update(c)
	for range 40 {
		c.Conns += 20
		c.Packets += 100
		c.Bytes += 6000
		e.update(c)
	}
	assert.Equal(t, ipvsadm.Rates{CPS: 10, InPPS: 50, InBPS: 3000}, e.rates())

	// The first period moves the average a quarter of the way.
	var f estimator
	f.update(dataplane.Counters{})
	f.update(dataplane.Counters{Conns: 20})
	assert.EqualValues(t, 2, f.rates().CPS, "(20<<9)>>2 = 2560 -> (2560+511)>>10 = 2")
}

// SetStandby reaches the data plane at once, as flags: no Apply, and the
// same set again writes nothing. Status shows which services are on
// standby. (Which VIPs are on standby is the VIP owners' to say: pkg/daemon
// tests that VRRP's are until it is MASTER.)
func TestSetStandbyWritesOnlyFlags(t *testing.T) {
	d, dp, _, _ := newTest(t)
	cfg := parse(t, base+`
virtual_server 10.0.0.200 80 {
    lb_kind DR
    protocol TCP
    real_server 10.0.0.13 80 { weight 1 }
}
`)
	require.NoError(t, d.Load(cfg))
	n := len(dp.applied)
	vip := netip.MustParseAddr("10.0.0.100")
	require.NoError(t, d.SetStandby(map[netip.Addr]bool{vip: true}))
	assert.Len(t, dp.applied, n, "a role flip applies nothing")
	require.Len(t, dp.standby, 1)
	assert.Equal(t, map[netip.Addr]bool{vip: true}, dp.standby[0])
	standby := func() map[string]bool {
		st, err := d.Status()
		require.NoError(t, err)
		out := map[string]bool{}
		for _, s := range st.Services {
			out[s.Addr] = s.Standby
		}
		return out
	}
	assert.Equal(t, map[string]bool{"10.0.0.100": true, "10.0.0.200": false}, standby())

	require.NoError(t, d.SetStandby(map[netip.Addr]bool{vip: true}))
	assert.Len(t, dp.standby, 1, "the same set again changes nothing")
	require.NoError(t, d.SetStandby(map[netip.Addr]bool{}))
	assert.Len(t, dp.standby, 2)
	assert.Equal(t, map[string]bool{"10.0.0.100": false, "10.0.0.200": false}, standby())
	assert.Len(t, dp.applied, n)
}

// When the data plane refused a change, xlbadm lists what it holds, and
// says on stderr where that is not what is wanted; the status says why.
func TestListingSaysWhereTheDataPlaneDiffers(t *testing.T) {
	d, dp, c, _ := newTest(t)
	require.NoError(t, d.Load(parse(t, base)))
	c.report(t, "10.0.0.11:80", Health{Up: true})
	out, errOut, code := d.Ipvsadm([]string{"-Ln"}, "")
	require.Equal(t, 0, code)
	assert.Empty(t, errOut, "in step: nothing to say")

	dp.mu.Lock()
	dp.fail = errors.New("no room for its scheduler table")
	dp.mu.Unlock()
	c.report(t, "10.0.0.11:80", Health{Up: false, Reason: "connection refused"})
	out, errOut, code = d.Ipvsadm([]string{"-Ln"}, "")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "  -> 10.0.0.11:80", "the data plane still holds the real")
	assert.Contains(t, errOut, "xlb: the data plane holds what is listed, which differs from what is wanted (no room for its scheduler table)")
	assert.Contains(t, errOut, "TCP 10.0.0.100:80: real 10.0.0.11:80 in the data plane, not wanted")
	st, err := d.Status()
	require.NoError(t, err)
	assert.Equal(t, "no room for its scheduler table", st.LastError)
}

// A director started on a data plane that already holds its service (one
// taken over from an xlb that died) starts the checked reals that data
// plane had taken out as down, where a fresh start would send them
// traffic until their checkers failed again; unchecked reals and reals it
// holds start up as ever.
func TestTakeOverKeepsDownRealsOut(t *testing.T) {
	d, dp, c, _ := newTest(t)
	held := parse(t, base)
	vip := netip.MustParseAddr("10.0.0.100")
	dp.applied = [][]dataplane.Service{{{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "wrr",
		Reals: []dataplane.Real{
			{Addr: netip.MustParseAddr("10.0.0.12"), Port: 80, Weight: 0, Forward: lvs.DR}, // inhibited: down
			{Addr: netip.MustParseAddr("10.0.0.13"), Port: 80, Weight: 1, Forward: lvs.DR},
		}}}}
	require.NoError(t, d.Load(held))
	assert.Equal(t, map[string]int32{"10.0.0.50:80": 1}, weights(dp.last()[0]),
		"10.0.0.11 (absent) and 10.0.0.12 (inhibited) start down: live weight 1 is under the quorum")
	st, err := d.Status()
	require.NoError(t, err)
	assert.Equal(t, "out of the data plane taken over: down until its checkers pass", st.Services[0].Reals[0].Reason)
	c.report(t, "10.0.0.11:80", Health{Up: true})
	c.report(t, "10.0.0.12:80", Health{Up: true})
	assert.Equal(t, map[string]int32{"10.0.0.11:80": 2, "10.0.0.12:80": 2, "10.0.0.13:80": 1}, weights(dp.last()[0]))

	// A reload is no start: a real added later starts up.
	more := strings.Replace(base, "    real_server 10.0.0.13 80 {", "    real_server 10.0.0.14 80 {\n        weight 1\n        TCP_CHECK { connect_timeout 1 }\n    }\n    real_server 10.0.0.13 80 {", 1)
	require.NoError(t, d.Load(parse(t, more)))
	assert.Contains(t, weights(dp.last()[0]), "10.0.0.14:80")
}

// ipvsadm options are applied where the data plane has them and shown as
// ipvsadm shows them, refused where it has not: thresholds (-x/-y),
// one-packet scheduling (-o), persistence engines (--pe), a netmask that
// is not contiguous (-M), and names for addresses and ports.
func TestIpvsadmOptionsAppliedOrRefused(t *testing.T) {
	d, dp, _, _ := newTest(t)
	run := func(args ...string) (string, string, int) { return d.Ipvsadm(args, "") }

	// The XDP data plane has no thresholds and no ops.
	_, errOut, code := run("-A", "-t", "10.0.0.200:80", "-s", "rr")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = run("-a", "-t", "10.0.0.200:80", "-r", "10.0.0.21", "-g", "-x", "100", "-y", "10")
	assert.Equal(t, 255, code)
	assert.Contains(t, errOut, "connection thresholds (uthreshold/lthreshold, ipvsadm -x/-y) are not supported by the XDP data plane")
	_, errOut, code = run("-A", "-u", "10.0.0.200:53", "-s", "rr", "-o")
	assert.Equal(t, 255, code)
	assert.Contains(t, errOut, "one-packet scheduling (ops): not supported by the XDP data plane")
	out, _, _ := run("-Ln", "--thresholds")
	assert.NotContains(t, out, "10.0.0.21", "nothing half-applied")
	assert.NotContains(t, out, ":53")

	// No data plane has persistence engines: the kernel's answer when
	// the engine's module is missing.
	_, errOut, code = run("-A", "-u", "10.0.0.200:5060", "-s", "rr", "-p", "60", "--pe", "sip")
	assert.Equal(t, 255, code)
	assert.Contains(t, errOut, "Scheduler or persistence engine not found")

	// A netmask is kept as given, as the kernel keeps it.
	_, errOut, code = run("-A", "-t", "10.0.0.200:81", "-s", "rr", "-p", "60", "-M", "255.0.255.0")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, lvs.Netmask(0xff00ff00), dp.last()[1].PersistenceMask)
	out, _, _ = run("-Ln")
	assert.Contains(t, out, "TCP  10.0.0.200:81 rr persistent 60 mask 255.0.255.0\n")
	out, _, _ = run("-Sn")
	assert.Contains(t, out, "-A -t 10.0.0.200:81 -s rr -p 60 -M 255.0.255.0\n")

	// Names, as ipvsadm resolves them: /etc/hosts and /etc/services.
	_, errOut, code = run("-A", "-t", "localhost:http", "-s", "rr")
	require.Equal(t, 0, code, errOut)
	out, _, _ = run("-Ln")
	assert.Contains(t, out, "TCP  127.0.0.1:80 rr\n")
	out, _, _ = run("-L")
	assert.Contains(t, out, "TCP  localhost:http rr\n", "without -n, names")
	_, errOut, code = run("-A", "-u", "10.0.0.200:http", "-s", "rr")
	assert.Equal(t, 2, code, "http is a TCP service only in /etc/services")
	assert.Contains(t, errOut, "illegal virtual server address[:port] specified")

	// The IPVS data plane applies thresholds and ops, and lists them.
	ipvsCaps := fakeCaps
	ipvsCaps.Name, ipvsCaps.Thresholds, ipvsCaps.Flags = "the IPVS data plane", true, lvs.SchedFlags|lvs.OnePacket
	dp.caps = &ipvsCaps
	_, errOut, code = run("-a", "-t", "10.0.0.200:80", "-r", "10.0.0.21", "-g", "-x", "100", "-y", "10")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, uint32(100), dp.last()[0].Reals[0].UThreshold)
	assert.Equal(t, uint32(10), dp.last()[0].Reals[0].LThreshold)
	out, _, _ = run("-Ln", "--thresholds")
	assert.Contains(t, out, "  -> 10.0.0.21:80                 100        10         0          0         \n")
	_, errOut, code = run("-A", "-u", "10.0.0.200:53", "-s", "rr", "-o")
	require.Equal(t, 0, code, errOut)
	out, _, _ = run("-Ln")
	assert.Contains(t, out, "UDP  10.0.0.200:53 rr ops\n")

	// IPv6 services, which the IPVS data plane has: prefix-length masks.
	ipvsCaps.IPv6 = true
	_, errOut, code = run("-A", "-t", "[2001:db8::1]:80", "-s", "rr", "-p", "60", "-M", "64")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = run("-a", "-t", "[2001:db8::1]:80", "-r", "[2001:db8::11]:80", "-m")
	require.Equal(t, 0, code, errOut)
	out, _, _ = run("-Ln")
	assert.Contains(t, out, "TCP  [2001:db8::1]:80 rr persistent 60 mask 64\n  -> [2001:db8::11]:80")
}

// A virtual_server_group is every service it stands for, sharing one set
// of reals and one health state: a real that goes down leaves every one of
// them. A DR real takes each service's port. The IPVS data plane takes
// fwmark and port-0 services; XDP takes groups of addresses and names
// what it cannot take.
func TestGroupsServed(t *testing.T) {
	cfg := parse(t, `
virtual_server_group G {
    10.0.0.100-101 80
    10.0.0.102 443
}
virtual_server group G {
    protocol TCP
    lb_algo rr
    lb_kind DR
    real_server 10.0.0.11 80 {
        TCP_CHECK {
        }
    }
    real_server 10.0.0.12 80 {
    }
}
`)
	d, dp, c, _ := newTest(t)
	require.NoError(t, d.Load(cfg))
	var got []string
	for _, s := range dp.last() {
		got = append(got, fmt.Sprintf("%s %v", s.ServiceKey, weights(s)))
	}
	assert.Equal(t, []string{
		"TCP 10.0.0.100:80 map[10.0.0.11:80:1 10.0.0.12:80:1]",
		"TCP 10.0.0.101:80 map[10.0.0.11:80:1 10.0.0.12:80:1]",
		"TCP 10.0.0.102:443 map[10.0.0.11:443:1 10.0.0.12:443:1]",
	}, got)
	c.report(t, "10.0.0.11:80", Health{Up: false, Reason: "connection refused"})
	for _, s := range dp.last() {
		assert.Len(t, s.Reals, 1, "%s: the down real left every service of the group", s.ServiceKey)
	}
	st, err := d.Status()
	require.NoError(t, err)
	require.Len(t, st.Services, 3)
	assert.Equal(t, uint16(443), st.Services[2].Port)
	assert.Equal(t, uint16(443), st.Services[2].Reals[1].Port)
	assert.True(t, st.Services[2].Reals[1].InService)

	both := parse(t, `
virtual_server_group G {
    10.0.0.100 80
    10.0.0.200 0
}
virtual_server group G {
    protocol TCP
    lb_kind DR
    real_server 10.0.0.2 80 {
    }
}
virtual_server fwmark 5 {
    lb_kind DR
    real_server 10.0.0.3 80 {
    }
}
`)
	require.NoError(t, Validate(both, ipvs.Caps))
	err = Validate(both, xdp.Caps)
	require.Error(t, err)
	assert.Equal(t, "keepalived.conf:12: virtual_server fwmark 5: firewall-mark services are not supported by the XDP data plane: "+
		"the mark is set by netfilter, after XDP has seen the packet (--dataplane auto runs such a file on IPVS)", err.Error(), "the port-0 entry is XDP's too")
}

// xlbadm makes fwmark services where the data plane has them (IPVS), listed
// as ipvsadm lists them, and XDP refuses them by name.
func TestXlbadmFWMark(t *testing.T) {
	d, dp, _, _ := newTest(t)
	caps := ipvs.Caps
	dp.caps = &caps
	for _, args := range [][]string{{"-A", "-f", "5", "-s", "rr", "-p", "60"}, {"-a", "-f", "5", "-r", "10.0.0.2", "-g", "-w", "3"}} {
		_, errOut, code := d.Ipvsadm(args, "")
		require.Equal(t, 0, code, "%v: %s", args, errOut)
	}
	require.Len(t, dp.last(), 1)
	assert.Equal(t, dataplane.ServiceKey{Addr: netip.IPv4Unspecified(), FWMark: 5}, dp.last()[0].ServiceKey)
	out, errOut, code := d.Ipvsadm([]string{"-Ln"}, "")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "FWM  5 rr persistent 60\n  -> 10.0.0.2:0                   Route   3      0          0         \n")
	out, _, _ = d.Ipvsadm([]string{"-Sn"}, "")
	assert.Contains(t, out, "-A -f 5 -s rr -p 60\n-a -f 5 -r 10.0.0.2:0 -g -w 3\n")

	d, dp, _, _ = newTest(t) // XDP's caps
	_, errOut, code = d.Ipvsadm([]string{"-A", "-f", "5", "-s", "rr"}, "")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "firewall-mark services are not supported by the XDP data plane")
}

// uthreshold/lthreshold from keepalived.conf reach the IPVS data plane,
// which applies them, and are refused by name on XDP, which has no
// overload state.
func TestThresholdsFromTheConfig(t *testing.T) {
	cfg := parse(t, `
virtual_server 10.0.0.100 80 {
    protocol TCP
    lb_kind DR
    real_server 10.0.0.11 80 {
        uthreshold 10
        lthreshold 5
    }
}
`)
	d, dp, _, _ := newTest(t)
	caps := ipvs.Caps
	dp.caps = &caps
	require.NoError(t, d.Load(cfg))
	r := dp.last()[0].Reals[0]
	assert.Equal(t, [2]uint32{10, 5}, [2]uint32{r.UThreshold, r.LThreshold})

	err := Validate(cfg, xdp.Caps)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "keepalived.conf:5: real_server 10.0.0.11 80: connection thresholds (uthreshold/lthreshold, ipvsadm -x/-y) are not supported by the XDP data plane")
}

// sloppy_tcp per service: XDP has it so; IPVS has one sysctl for the
// host, so a file where some TCP services have it and others not is
// refused there, naming both (and --sloppy-tcp, which gives it to all).
func TestSloppyPerService(t *testing.T) {
	cfg := parse(t, `
virtual_server 10.0.0.100 80 {
    protocol TCP
    lb_kind DR
    lvs_sched mh
    sloppy_tcp
    real_server 10.0.0.2 80 {
    }
}
virtual_server 10.0.0.100 443 {
    protocol TCP
    lb_kind DR
    real_server 10.0.0.2 443 {
    }
}
`)
	require.NoError(t, Validate(cfg, xdp.Caps))
	err := Validate(cfg, ipvs.Caps)
	require.Error(t, err)
	assert.Equal(t, "keepalived.conf:10: virtual_server 10.0.0.100 443: sloppy_tcp is one switch for the whole host on the IPVS data plane (net.ipv4.vs.sloppy_tcp): "+
		"virtual_server 10.0.0.100 80 (keepalived.conf:2) has it, virtual_server 10.0.0.100 443 (keepalived.conf:10) does not; give it to every TCP service, or run with --sloppy-tcp", err.Error())

	d, dp, _, _ := newTest(t)
	require.NoError(t, d.Load(cfg))
	svcs := dp.last()
	require.Len(t, svcs, 2)
	assert.True(t, svcs[0].Sloppy, "the data plane is told")
	assert.False(t, svcs[1].Sloppy)
	st, err := d.Status()
	require.NoError(t, err)
	assert.True(t, st.Services[0].Sloppy, "and xlb status shows it")
}

// xlbadm's tunnel options reach the data plane and come back in its
// listings, as ipvsadm's do; what the data plane cannot do is refused.
func TestIpvsadmTunnels(t *testing.T) {
	d, dp, _, _ := newTest(t)
	caps := fakeCaps
	caps.Forwards = []lvs.Forward{lvs.DR, lvs.NAT, lvs.TUN}
	caps.Tunnels = []lvs.TunnelType{lvs.TunIPIP, lvs.TunGUE, lvs.TunGRE}
	dp.caps = &caps
	run := func(args ...string) (string, string, int) { return d.Ipvsadm(args, "") }
	_, errOut, code := run("-A", "-t", "10.0.0.200:80", "-s", "rr")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = run("-a", "-t", "10.0.0.200:80", "-r", "10.0.0.21", "-i", "--tun-type", "gue", "--tun-port", "6080")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = run("-a", "-t", "10.0.0.200:80", "-r", "10.0.0.22", "-i", "--tun-type", "gre")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = run("-a", "-t", "10.0.0.200:80", "-r", "10.0.0.23", "-i")
	require.Equal(t, 0, code, errOut)
	byAddr := map[string]lvs.Tunnel{}
	for _, r := range dp.last()[0].Reals {
		assert.Equal(t, lvs.TUN, r.Forward)
		byAddr[r.Addr.String()] = r.Tunnel
	}
	assert.Equal(t, map[string]lvs.Tunnel{
		"10.0.0.21": {Type: lvs.TunGUE, Port: 6080}, "10.0.0.22": {Type: lvs.TunGRE}, "10.0.0.23": {},
	}, byAddr)
	out, _, _ := run("-Ln", "--tun-info")
	// ipvsadm's own columns and words (pkg/ipvsadm's goldens).
	assert.Contains(t, out, "  -> 10.0.0.21:80                 Tunnel  gue:6080:-c   1      0          0         \n")
	assert.Contains(t, out, "  -> 10.0.0.22:80                 Tunnel  gre:-c        1      0          0         \n")
	assert.Contains(t, out, "  -> 10.0.0.23:80                 Tunnel  ipip          1      0          0         \n")
	out, _, _ = run("-Sn")
	assert.Contains(t, out, "-a -t 10.0.0.200:80 -r 10.0.0.21:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum\n")
	st, err := d.Status()
	require.NoError(t, err)
	tunnels := map[string]string{}
	for _, r := range st.Services[0].Reals {
		tunnels[r.Addr] = r.Forward + "/" + r.Tunnel
	}
	assert.Equal(t, map[string]string{"10.0.0.21": "TUN/gue:6080:nocsum", "10.0.0.22": "TUN/gre:nocsum", "10.0.0.23": "TUN/ipip"}, tunnels, "xlb status says each real's tunnel")

	// Checksums are IPVS's only: refused, nothing half-applied.
	_, errOut, code = run("-e", "-t", "10.0.0.200:80", "-r", "10.0.0.21", "-i", "--tun-type", "gue", "--tun-port", "6080", "--tun-csum")
	assert.Equal(t, 255, code)
	assert.Contains(t, errOut, "tunnel checksum option csum is not supported by the XDP data plane (nocsum is)")
	assert.Equal(t, lvs.TunNoCsum, dp.last()[0].Reals[slices.IndexFunc(dp.last()[0].Reals, func(r dataplane.Real) bool { return r.Addr.String() == "10.0.0.21" })].Tunnel.Flags)
}

// routingDataplane is the fake data plane that carries checks through
// (dataplane.CheckRouter), recording what it was asked.
type routingDataplane struct {
	fakeDataplane
	mu       sync.Mutex
	targets  map[string]uint32
	released []string
}

func (r *routingDataplane) CheckTarget(svc dataplane.ServiceKey, real dataplane.Real) (uint32, func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := svc.Addr.String() + ">" + real.Addr.String() + "/" + real.Forward.Kind()
	mark := 0x786c0000 | uint32(len(r.targets)+1)
	r.targets[k] = mark
	return mark, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.released = append(r.released, k)
	}, nil
}

// check_via_vip: each checked real's checks get the data plane's mark for
// it, released when they stop; without it, none. What cannot go through
// (a NAT real, a data plane without it) is refused with the line.
func TestCheckViaVIPMarks(t *testing.T) {
	dp := &routingDataplane{targets: map[string]uint32{}}
	caps := fakeCaps
	caps.CheckViaVIP = true
	dp.caps = &caps
	c := &checks{reports: map[string]func(Health){}, started: map[string]int{}, marks: map[string]uint32{}}
	d := New(t.Context(), Options{Dataplane: dp, Checks: c.start})
	conf := func(via string) string {
		return "virtual_server 10.0.0.100 80 {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n" + via +
			"    real_server 10.0.0.11 80 {\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n" +
			"    real_server 10.0.0.12 80 {\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n}\n"
	}
	require.NoError(t, d.Load(parse(t, conf(""))))
	c.mu.Lock()
	assert.Equal(t, map[string]uint32{"10.0.0.11:80": 0, "10.0.0.12:80": 0}, c.marks, "no check_via_vip: no mark")
	c.mu.Unlock()

	require.NoError(t, d.Load(parse(t, conf("    check_via_vip\n"))))
	c.mu.Lock()
	assert.Equal(t, 2, c.started["10.0.0.11:80"], "the reload restarted the checks: they go another way now")
	assert.Equal(t, dp.targets["10.0.0.100>10.0.0.11/DR"], c.marks["10.0.0.11:80"])
	assert.Equal(t, dp.targets["10.0.0.100>10.0.0.12/DR"], c.marks["10.0.0.12:80"])
	assert.NotZero(t, c.marks["10.0.0.11:80"])
	c.mu.Unlock()

	require.NoError(t, d.Load(parse(t, conf(""))))
	require.Eventually(t, func() bool {
		dp.mu.Lock()
		defer dp.mu.Unlock()
		return len(dp.released) == 2
	}, time.Second, 10*time.Millisecond, "the marks are released when the checks stop")

	// A NAT real's clients reach it at its own address: its checks go
	// there, unmarked.
	nat := strings.ReplaceAll(conf("    check_via_vip\n"), "lb_kind DR", "lb_kind NAT")
	require.NoError(t, d.Load(parse(t, nat)))
	c.mu.Lock()
	assert.Equal(t, map[string]uint32{"10.0.0.11:80": 0, "10.0.0.12:80": 0}, c.marks)
	c.mu.Unlock()
	// An IPv6 service's reals are checked through its VIP as IPv4's.
	v6 := strings.ReplaceAll(strings.ReplaceAll(conf("    check_via_vip\n"), "10.0.0.100", "2001:db8::100"), "10.0.0.1", "2001:db8::")
	caps.IPv6 = true
	require.NoError(t, d.Load(parse(t, v6)))
	c.mu.Lock()
	assert.Equal(t, dp.targets["2001:db8::100>2001:db8::1/DR"], c.marks["[2001:db8::1]:80"])
	assert.NotZero(t, c.marks["[2001:db8::1]:80"])
	c.mu.Unlock()
	// A real of the other family (a tunnel across families) cannot be:
	// refused at its line.
	across := strings.ReplaceAll(strings.ReplaceAll(conf("    check_via_vip\n"), "10.0.0.100", "2001:db8::100"), "lb_kind DR", "lb_kind TUN")
	caps.Forwards, caps.TunnelCrossFamily = append(caps.Forwards, lvs.TUN), true
	err := d.Load(parse(t, across))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "keepalived.conf:6: real_server 10.0.0.11 80: check_via_vip: checks through the data path go to a real of the VIP's family")
	caps.IPv6 = false
	// A data plane that cannot carry checks refuses the keyword.
	caps.CheckViaVIP = false
	err = d.Load(parse(t, conf("    check_via_vip\n")))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "check_via_vip (health checks through the data path) is not supported by the XDP data plane")
}

// updatingDataplane is a fakeDataplane that can Update: it records each
// Update and applies it to the state last applied.
type updatingDataplane struct {
	*fakeDataplane
	updates    []dataplane.Service // every service an Update set
	removed    []dataplane.ServiceKey
	failUpdate error
}

func (u *updatingDataplane) Update(set []dataplane.Service, del []dataplane.ServiceKey) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.failUpdate != nil {
		return u.failUpdate
	}
	var now []dataplane.Service
	for _, s := range u.applied[len(u.applied)-1] {
		if slices.Contains(del, s.ServiceKey) {
			continue
		}
		if i := slices.IndexFunc(set, func(n dataplane.Service) bool { return n.ServiceKey == s.ServiceKey }); i >= 0 {
			s = set[i]
		}
		now = append(now, s)
	}
	for _, n := range set {
		if !slices.ContainsFunc(now, func(s dataplane.Service) bool { return s.ServiceKey == n.ServiceKey }) {
			now = append(now, n)
		}
	}
	u.applied = append(u.applied, now)
	u.updates = append(u.updates, set...)
	u.removed = append(u.removed, del...)
	return nil
}

// A health transition in one of several virtual servers reaches a data
// plane that can Update as that server's services alone; an xlbadm edit
// as the service it changed. The state the data plane ends with is the
// one a whole Apply would have given it. A refused Update falls back to
// the whole state.
func TestOneChangeUpdatesOneService(t *testing.T) {
	dp := &updatingDataplane{fakeDataplane: &fakeDataplane{}}
	c := &checks{reports: map[string]func(Health){}, started: map[string]int{}}
	d := New(t.Context(), Options{Dataplane: dp, Checks: c.start, Scripts: func(*config.Script, string) {}})
	require.NoError(t, d.Load(parse(t, base+`
virtual_server_group G {
    10.0.0.101 80
    10.0.0.102 80
}
virtual_server group G {
    lb_algo rr
    protocol TCP
    real_server 10.0.0.21 80 {
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.0.0.22 80 {
        TCP_CHECK { connect_timeout 1 }
    }
}
`)))
	applies := len(dp.applied)
	require.Len(t, dp.last(), 3)

	c.report(t, "10.0.0.21:80", Health{Up: false})
	require.Len(t, dp.applied, applies+1, "one change, one call")
	var keys []string
	for _, s := range dp.updates {
		keys = append(keys, s.ServiceKey.String())
		assert.Equal(t, map[string]int32{"10.0.0.22:80": 1}, weights(s))
	}
	assert.ElementsMatch(t, []string{"TCP 10.0.0.101:80", "TCP 10.0.0.102:80"}, keys, "the group's services, and nothing else")
	assert.Equal(t, d.wanted(), dp.last(), "the state a whole Apply would give")

	run := func(args ...string) { _, errOut, code := d.Ipvsadm(args, ""); require.Equal(t, 0, code, errOut) }
	run("-A", "-t", "10.0.0.200:80", "-s", "rr")
	run("-a", "-t", "10.0.0.200:80", "-r", "10.0.0.31", "-g")
	run("-a", "-t", "10.0.0.200:80", "-r", "10.0.0.32", "-g")
	dp.updates = nil
	run("-e", "-t", "10.0.0.200:80", "-r", "10.0.0.32", "-g", "-w", "5")
	require.Len(t, dp.updates, 1, "one weight changed: one service")
	assert.Equal(t, map[string]int32{"10.0.0.31:80": 1, "10.0.0.32:80": 5}, weights(dp.updates[0]))
	assert.Equal(t, d.wanted(), dp.last())
	run("-D", "-t", "10.0.0.200:80")
	assert.Equal(t, []dataplane.ServiceKey{{Addr: netip.MustParseAddr("10.0.0.200"), Port: 80, Protocol: lvs.TCP}}, dp.removed)
	assert.Equal(t, d.wanted(), dp.last())

	dp.failUpdate = errors.New("no room")
	applies = len(dp.applied)
	c.report(t, "10.0.0.21:80", Health{Up: true})
	require.Len(t, dp.applied, applies+1, "a refused Update: the whole state applied")
	assert.Equal(t, d.wanted(), dp.last())
}
