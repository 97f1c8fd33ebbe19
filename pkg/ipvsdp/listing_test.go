package ipvsdp

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/ipvsadm"
)

// ipvsadmState is the table xlbadm would list, built the way the director
// builds it (pkg/director/ipvsadm.go ipvsState): settings from the desired
// services, counters from Stats, then Timeouts and Conns.
func ipvsadmState(t *testing.T, v *IPVS, services []dataplane.Service) *ipvsadm.State {
	t.Helper()
	stats, err := v.Stats()
	require.NoError(t, err)
	byKey := map[dataplane.ServiceKey]dataplane.ServiceStats{}
	for _, s := range stats.Services {
		byKey[s.ServiceKey] = s
	}
	counters := func(c dataplane.Counters) ipvsadm.Stats {
		return ipvsadm.Stats{Conns: c.Conns, InPkts: c.Packets, InBytes: c.Bytes, OutPkts: c.OutPackets, OutBytes: c.OutBytes}
	}
	st := ipvsadm.NewState()
	for _, svc := range services {
		ss := byKey[svc.ServiceKey]
		is := ipvsadm.Service{Protocol: ipvsadm.Protocol(svc.Protocol), Addr: svc.Addr, Port: svc.Port,
			Scheduler: svc.Scheduler, Flags: ipvsadm.ServiceFlags(svc.Flags), Stats: counters(ss.Counters)}
		if svc.Persistence > 0 {
			is.Persistent, is.Timeout = true, uint32(svc.Persistence/time.Second)
			n := svc.PersistenceMask
			if n == 0 {
				n = svc.Addr.BitLen()
			}
			if svc.Addr.Is4() {
				is.Netmask = ^uint32(0) << (32 - n)
			} else {
				is.Netmask = uint32(n)
			}
		}
		for _, r := range ss.Reals {
			d := ipvsadm.Dest{Addr: r.Addr, Port: r.Port, Weight: r.Weight, Forward: ipvsadm.ForwardRoute,
				ActiveConns: uint32(r.ActiveConns), InactConns: uint32(r.InactConns), Stats: counters(r.Counters)}
			switch r.Forward {
			case dataplane.NAT:
				d.Forward = ipvsadm.ForwardMasq
			case dataplane.Tunnel:
				d.Forward = ipvsadm.ForwardTunnel
			}
			is.Dests = append(is.Dests, d)
		}
		st.Services = append(st.Services, is)
	}
	to, err := v.Timeouts()
	require.NoError(t, err)
	st.Timeouts = ipvsadm.Timeouts{TCP: int(to.TCP / time.Second), TCPFin: int(to.TCPFin / time.Second), UDP: int(to.UDP / time.Second)}
	conns, err := v.Conns()
	require.NoError(t, err)
	for _, c := range conns {
		st.Conns = append(st.Conns, ipvsadm.Conn{Protocol: ipvsadm.Protocol(c.Protocol), Expires: c.Expires, State: c.State,
			Client: c.Client, Virtual: c.Virtual, Dest: c.Real})
	}
	return st
}

// compareIpvsadm runs the real ipvsadm in e's namespace and checks that
// pkg/ipvsadm prints the same from the data plane's view. Expiry times
// tick while the two are read, so a mismatch is retried.
func compareIpvsadm(t *testing.T, e *env, v *IPVS, services []dataplane.Service, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("ipvsadm")
	if err != nil {
		if os.Getenv("VMTEST") != "" {
			t.Fatalf("the test VM should have ipvsadm: %v", err)
		}
		t.Logf("no ipvsadm binary here, not comparing ipvsadm %s", strings.Join(args, " "))
		return
	}
	cmd, err := ipvsadm.Parse(args)
	require.NoError(t, err)
	for attempt := 1; ; attempt++ {
		kernel := e.ns.run(t, append([]string{bin}, args...)...)
		var ours strings.Builder
		require.NoError(t, ipvsadmState(t, v, services).Exec(&ours, cmd))
		if kernel == ours.String() || attempt == 3 {
			assert.Equal(t, kernel, ours.String(), "ipvsadm %s", strings.Join(args, " "))
			return
		}
	}
}

// TestIpvsadmListing: the real ipvsadm lists what xlb made, and lists it
// as xlbadm would.
func TestIpvsadmListing(t *testing.T) {
	e := kernelEnv(t)
	v, _ := e.open(t, Options{})
	svcs := sample()
	require.NoError(t, v.Apply(svcs))
	compareIpvsadm(t, e, v, svcs, "-Ln")
	compareIpvsadm(t, e, v, svcs, "-Ln", "--stats")
	compareIpvsadm(t, e, v, svcs, "-S", "-n")
	require.NoError(t, v.SetTimeouts(dataplane.Timeouts{TCP: 100 * time.Second}))
	compareIpvsadm(t, e, v, svcs, "-L", "--timeout")
}
