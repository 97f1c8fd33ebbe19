package ipvs

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	kipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func svcKey(a string, port uint16, p lvs.Protocol) dataplane.ServiceKey {
	return dataplane.ServiceKey{Addr: addr(a), Port: port, Protocol: p}
}

// sample has a service for every scheduler xlb names, with scheduler flags,
// persistence with and without a mask, DR, NAT and TUN reals, a UDP
// service and an IPv6 one with an IPv4 real behind a tunnel.
func sample() []dataplane.Service {
	var out []dataplane.Service
	for i, s := range schedulersHere() {
		out = append(out, dataplane.Service{
			ServiceKey: svcKey(fmt.Sprintf("10.79.0.%d", i+1), 80, lvs.TCP),
			Scheduler:  s,
			Reals: []dataplane.Real{
				{Addr: addr("10.80.0.1"), Port: 80, Weight: 1, Forward: lvs.DR},
				{Addr: addr("10.80.0.2"), Port: 8080, Weight: 2, Forward: lvs.NAT},
				{Addr: addr("10.80.0.3"), Port: 80, Weight: 3, Forward: lvs.TUN},
			},
		})
	}
	out[0].Persistence, out[0].PersistenceMask = 300*time.Second, 0xffffff00 // rr
	out[1].Persistence = 60 * time.Second                                    // wrr, /32
	out[2].Flags = lvs.Sched1 | lvs.Sched2                                   // lc, with sh's flags
	out = append(out,
		dataplane.Service{
			ServiceKey: svcKey("10.79.0.100", 53, lvs.UDP), Scheduler: "wlc",
			Reals: []dataplane.Real{
				{Addr: addr("10.80.0.1"), Port: 53, Weight: 5, Forward: lvs.NAT},
				{Addr: addr("10.80.0.2"), Port: 5353, Weight: 0, Forward: lvs.NAT},
			},
		},
		dataplane.Service{
			ServiceKey: svcKey("fd00:79::1", 443, lvs.TCP), Scheduler: "sh",
			Persistence: 600 * time.Second, PersistenceMask: 64,
			Reals: []dataplane.Real{
				{Addr: addr("fd00:80::1"), Port: 443, Weight: 1, Forward: lvs.DR},
				{Addr: addr("10.80.0.4"), Port: 443, Weight: 1, Forward: lvs.TUN},
			},
		})
	return out
}

func countWrites(services []dataplane.Service) int {
	n := len(services)
	for _, s := range services {
		n += len(s.Reals)
	}
	return n
}

func TestApplyRoundTrip(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		v, cc := e.open(t, Options{})
		svcs := sample()
		require.NoError(t, v.Apply(svcs))
		assert.Equal(t, expectedView(svcs), e.view(t))
		assert.Len(t, cc.take(), countWrites(svcs))

		require.NoError(t, v.Apply(svcs))
		assert.Empty(t, cc.take(), "applying the same services again writes nothing")

		st, err := v.Stats()
		require.NoError(t, err)
		assert.Empty(t, st.Reasons)
		require.Len(t, st.Services, len(svcs))
		for _, want := range svcs {
			i := slices.IndexFunc(st.Services, func(s dataplane.ServiceStats) bool { return s.ServiceKey == want.ServiceKey })
			require.GreaterOrEqual(t, i, 0, "service %s in Stats", want.ServiceKey)
			var got []dataplane.Real
			for _, r := range st.Services[i].Reals {
				assert.True(t, r.Resolved)
				got = append(got, r.Real)
			}
			assert.ElementsMatch(t, want.Reals, got, "reals of %s", want.ServiceKey)
		}
		assert.True(t, slices.IsSortedFunc(st.Services, func(a, b dataplane.ServiceStats) int { return compareKeys(a.ServiceKey, b.ServiceKey) }))
	})
}

// TestApplyEdits checks that every change is the smallest edit: a changed
// weight, scheduler, flag, persistence or forwarding method edits the
// service or dest in place (so IPVS keeps its connections and counters).
func TestApplyEdits(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		v, cc := e.open(t, Options{})
		svcs := sample()
		require.NoError(t, v.Apply(svcs))
		cc.take()
		steps := []struct {
			name   string
			change func(s []dataplane.Service) []dataplane.Service
			writes []string
		}{
			{"weight", func(s []dataplane.Service) []dataplane.Service {
				s[3].Reals[1].Weight = 7
				return s
			}, []string{"edit-real TCP 10.79.0.4:80 10.80.0.2:8080"}},
			{"weight 0 quiesces", func(s []dataplane.Service) []dataplane.Service {
				s[3].Reals[0].Weight = 0
				return s
			}, []string{"edit-real TCP 10.79.0.4:80 10.80.0.1:80"}},
			{"scheduler", func(s []dataplane.Service) []dataplane.Service {
				s[0].Scheduler = "wlc"
				return s
			}, []string{"edit-service TCP 10.79.0.1:80"}},
			{"persistence off", func(s []dataplane.Service) []dataplane.Service {
				s[0].Persistence, s[0].PersistenceMask = 0, 0
				return s
			}, []string{"edit-service TCP 10.79.0.1:80"}},
			{"persistence mask", func(s []dataplane.Service) []dataplane.Service {
				s[1].PersistenceMask = 0xffff0000
				return s
			}, []string{"edit-service TCP 10.79.0.2:80"}},
			{"flags", func(s []dataplane.Service) []dataplane.Service {
				s[2].Flags = lvs.Sched2
				return s
			}, []string{"edit-service TCP 10.79.0.3:80"}},
			{"forwarding method", func(s []dataplane.Service) []dataplane.Service {
				s[4].Reals[0].Forward = lvs.NAT
				return s
			}, []string{"edit-real TCP 10.79.0.5:80 10.80.0.1:80"}},
			{"reorder reals", func(s []dataplane.Service) []dataplane.Service {
				slices.Reverse(s[5].Reals)
				return s
			}, nil},
			{"remove real", func(s []dataplane.Service) []dataplane.Service {
				s[5].Reals = slices.Delete(s[5].Reals, 1, 2)
				return s
			}, []string{"del-real TCP 10.79.0.6:80 10.80.0.2:8080"}},
			{"replace real", func(s []dataplane.Service) []dataplane.Service {
				s[6].Reals[0] = dataplane.Real{Addr: addr("10.80.0.9"), Port: 80, Weight: 1, Forward: lvs.DR}
				return s
			}, []string{"add-real TCP 10.79.0.7:80 10.80.0.9:80", "del-real TCP 10.79.0.7:80 10.80.0.1:80"}},
			{"remove service", func(s []dataplane.Service) []dataplane.Service {
				return slices.Delete(s, 7, 8)
			}, []string{"del-service TCP 10.79.0.8:80"}},
			{"add service", func(s []dataplane.Service) []dataplane.Service {
				return append(s, dataplane.Service{ServiceKey: svcKey("10.79.0.50", 25, lvs.TCP), Scheduler: "nq",
					Reals: []dataplane.Real{{Addr: addr("10.80.0.5"), Port: 2525, Weight: 1, Forward: lvs.NAT}}})
			}, []string{"add-service TCP 10.79.0.50:25", "add-real TCP 10.79.0.50:25 10.80.0.5:2525"}},
			{"nothing", func(s []dataplane.Service) []dataplane.Service { return s }, nil},
		}
		for _, step := range steps {
			svcs = step.change(svcs)
			require.NoError(t, v.Apply(svcs), step.name)
			assert.Equal(t, step.writes, cc.take(), step.name)
			assert.Equal(t, expectedView(svcs), e.view(t), step.name)
		}
	})
}

func TestValidate(t *testing.T) {
	base := func() dataplane.Service {
		return dataplane.Service{ServiceKey: svcKey("10.79.0.1", 80, lvs.TCP), Scheduler: "wrr",
			Reals: []dataplane.Real{{Addr: addr("10.80.0.1"), Port: 80, Weight: 1, Forward: lvs.DR}}}
	}
	cases := []struct {
		name   string
		change func(s *dataplane.Service)
		err    string
	}{
		{"unknown scheduler", func(s *dataplane.Service) { s.Scheduler = "conhash" },
			`service TCP 10.79.0.1:80: scheduler conhash is not supported by the IPVS data plane (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos are)`},
		{"protocol", func(s *dataplane.Service) { s.Protocol = 132 }, "service SCTP 10.79.0.1:80: protocol SCTP is not supported by the IPVS data plane (TCP, UDP are)"},
		{"no address", func(s *dataplane.Service) { s.Addr = netip.Addr{} }, "is not a plain IPv4 or IPv6 address"},
		{"4in6", func(s *dataplane.Service) { s.Addr = addr("::ffff:10.79.0.1") }, "is not a plain IPv4 or IPv6 address"},
		{"port 0 without persistence", func(s *dataplane.Service) { s.Port = 0 }, "port 0 (all ports) needs persistence, as IPVS requires"},
		{"fwmark with an address", func(s *dataplane.Service) { s.FWMark = 3 }, "a firewall-mark service has no address, port or protocol"},
		{"flags", func(s *dataplane.Service) { s.Flags = 0x40 }, "service flags 0x40: not supported by the IPVS data plane"},
		{"persistence below 1 s", func(s *dataplane.Service) { s.Persistence = time.Millisecond }, "persistence 1ms mask 255.255.255.255 out of range"},
		{"persistence too long", func(s *dataplane.Service) { s.Persistence = dataplane.MaxPersistence + time.Second }, "out of range"},
		{"duplicate real", func(s *dataplane.Service) { s.Reals = append(s.Reals, s.Reals[0]) },
			"service TCP 10.79.0.1:80: real 10.80.0.1:80 listed twice"},
		{"negative weight", func(s *dataplane.Service) { s.Reals[0].Weight = -1 }, "real 10.80.0.1:80: weight -1 is negative"},
		{"DR maps ports", func(s *dataplane.Service) { s.Reals[0].Port = 8080 },
			"service TCP 10.79.0.1:80: real 10.80.0.1:8080: DR cannot map ports; the real's port must be 80"},
		{"TUN maps ports", func(s *dataplane.Service) { s.Reals[0].Port, s.Reals[0].Forward = 8080, lvs.TUN },
			"real 10.80.0.1:8080: TUN cannot map ports; the real's port must be 80"},
		{"real port 0", func(s *dataplane.Service) { s.Reals[0].Port, s.Reals[0].Forward = 0, lvs.NAT }, "real 10.80.0.1:0: port 0"},
		{"forwarding method", func(s *dataplane.Service) { s.Reals[0].Forward = 7 }, "lvs_method invalid is not supported by the IPVS data plane (DR, NAT, TUN are)"},
		{"families", func(s *dataplane.Service) { s.Reals[0].Addr = addr("fd00::1") },
			"real [fd00::1]:80: an IPv6 real of an IPv4 service needs tunnel forwarding"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base()
			c.change(&s)
			_, err := plan([]dataplane.Service{base2(), s})
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.err)
		})
	}
	_, err := plan([]dataplane.Service{base(), base()})
	assert.EqualError(t, err, "service TCP 10.79.0.1:80: listed twice")
	_, err = plan([]dataplane.Service{base(), base2()})
	assert.NoError(t, err)
}

func base2() dataplane.Service {
	return dataplane.Service{ServiceKey: svcKey("10.79.0.2", 80, lvs.UDP), Scheduler: "sh"}
}

// TestInvalidApplyChangesNothing: one bad service anywhere in the input
// and none of the input is applied.
func TestInvalidApplyChangesNothing(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		v, cc := e.open(t, Options{})
		svcs := sample()
		require.NoError(t, v.Apply(svcs))
		before := e.view(t)
		cc.take()

		next := sample()
		next[0].Scheduler = "sed"
		next[1].Reals[0].Weight = 9
		next = slices.Delete(next, 2, 3)
		bad := next[len(next)-1]
		bad.Reals = append(bad.Reals, bad.Reals[0])
		next[len(next)-1] = bad
		err := v.Apply(next)
		require.ErrorContains(t, err, "real [fd00:80::1]:443 listed twice")
		assert.Empty(t, cc.take())
		assert.Equal(t, before, e.view(t))
	})
}

// TestForeignServices: services someone made with ipvsadm stay as they are
// and stay out of Stats; xlb's go at Close.
func TestForeignServices(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		foreign := kipvs.Service{Address: addr("10.79.9.9"), Port: 80, Protocol: kipvs.TCP, Family: kipvs.INET,
			Scheduler: "rr", Netmask: netmask.MaskFrom(32, 32)}
		require.NoError(t, e.raw.CreateService(foreign))
		require.NoError(t, e.raw.CreateDestination(foreign, kipvs.Destination{Address: addr("10.80.9.9"), Port: 80,
			Family: kipvs.INET, Weight: 1, FwdMethod: kipvs.DirectRoute}))
		theirs := e.view(t)

		v, cc := e.open(t, Options{})
		svcs := sample()[:2]
		require.NoError(t, v.Apply(svcs))
		want := expectedView(svcs)
		for k, x := range theirs {
			want[k] = x
		}
		assert.Equal(t, want, e.view(t))
		st, err := v.Stats()
		require.NoError(t, err)
		assert.Len(t, st.Services, 2)

		require.NoError(t, v.Apply(nil))
		assert.Equal(t, theirs, e.view(t))
		require.NoError(t, v.Apply(svcs))
		cc.take()
		require.NoError(t, v.Close())
		assert.Len(t, cc.take(), 2, "Close removes xlb's two services")
		assert.Equal(t, theirs, e.view(t))
	})
}

// TestTakeOver: a service xlb is asked for that someone else made becomes
// xlb's: it is changed in place to the input (its connections stay), its
// extra dests go, and it goes at Close.
func TestTakeOver(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		want := sample()[3] // wlc
		old := kernelService(want)
		old.Scheduler = "rr"
		require.NoError(t, e.raw.CreateService(old))
		for _, d := range []kipvs.Destination{
			kernelDest(want.Reals[0]),
			{Address: addr("10.80.7.7"), Port: 80, Family: kipvs.INET, Weight: 1, FwdMethod: kipvs.DirectRoute},
		} {
			d.UpperThreshold = 100
			require.NoError(t, e.raw.CreateDestination(old, d))
		}
		v, cc := e.open(t, Options{})
		require.NoError(t, v.Apply([]dataplane.Service{want}))
		assert.Equal(t, []string{
			"edit-service TCP 10.79.0.4:80",
			"edit-real TCP 10.79.0.4:80 10.80.0.1:80", // the threshold goes
			"add-real TCP 10.79.0.4:80 10.80.0.2:8080",
			"add-real TCP 10.79.0.4:80 10.80.0.3:80",
			"del-real TCP 10.79.0.4:80 10.80.7.7:80",
		}, cc.take())
		assert.Equal(t, expectedView([]dataplane.Service{want}), e.view(t))
		require.NoError(t, v.Close())
		assert.Empty(t, e.view(t))
	})
}

// TestStateFile: a restarted xlb knows its services from the state file and
// removes those that left the configuration while it was down.
func TestStateFile(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		path := filepath.Join(t.TempDir(), "run", "ipvs.json")
		svcs := sample()[:3]
		v1, _ := e.open(t, Options{StateFile: path})
		require.NoError(t, v1.Apply(svcs))
		require.NoError(t, v1.Release())
		assert.FileExists(t, path)

		v2, cc := e.open(t, Options{StateFile: path})
		st, err := v2.Stats()
		require.NoError(t, err)
		assert.Len(t, st.Services, 3, "the restarted data plane reports the services it took over")
		require.NoError(t, v2.Apply(svcs[1:]))
		assert.Equal(t, []string{"del-service TCP 10.79.0.1:80"}, cc.take())
		assert.Equal(t, expectedView(svcs[1:]), e.view(t))
		require.NoError(t, v2.Close())
		assert.Empty(t, e.view(t))
		assert.NoFileExists(t, path)

		require.NoError(t, os.WriteFile(path, []byte("{"), 0o644))
		_, err = Open(Options{Client: e.raw, StateFile: path})
		assert.ErrorContains(t, err, "read IPVS state "+path)
	})
}

// TestApplyFailureSaysWhich: a write that fails mid-way names the object,
// and applying again finishes the job.
func TestApplyFailureSaysWhich(t *testing.T) {
	f := newFakeIPVS()
	e := &env{raw: f, fake: f}
	v, _ := e.open(t, Options{})
	svcs := sample()[:2]
	f.failOn = 6 // service 1, service 1's three reals, service 2, then its first real
	err := v.Apply(svcs)
	require.Error(t, err)
	assert.Equal(t, "service TCP 10.79.0.2:80: real 10.80.0.1:80: add: fake write 6: input/output error (IPVS may hold part of this change; apply again)", err.Error())
	require.NoError(t, v.Apply(svcs))
	assert.Equal(t, expectedView(svcs), e.view(t))
}

func TestTimeouts(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		v, cc := e.open(t, Options{})
		got, err := v.Timeouts()
		require.NoError(t, err)
		assert.Equal(t, dataplane.Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}, got)

		require.NoError(t, v.SetTimeouts(dataplane.Timeouts{TCP: 600 * time.Second, UDP: 30 * time.Second}))
		got, err = v.Timeouts()
		require.NoError(t, err)
		assert.Equal(t, dataplane.Timeouts{TCP: 600 * time.Second, TCPFin: 120 * time.Second, UDP: 30 * time.Second}, got)

		cc.take()
		assert.EqualError(t, v.SetTimeouts(dataplane.Timeouts{TCPFin: 500 * time.Millisecond}), "timeout 500ms out of range (1 s to 100 days)")
		assert.Empty(t, cc.take())
	})
}

func TestOpenWithoutIPVS(t *testing.T) {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		t.Skip("this kernel has IPVS")
	}
	_, err := Open(Options{})
	require.ErrorIs(t, err, ErrNoIPVS)
	assert.Regexp(t, `^the kernel has no IPVS: `, err.Error())
}

// A scheduler whose module the kernel lacks (twos before 6.2) is the
// kernel's to refuse, and the error names the module to look for.
func TestMissingSchedulerModule(t *testing.T) {
	e := kernelEnv(t)
	var missing string
	for _, s := range Caps.Schedulers {
		if !slices.Contains(schedulersHere(), s) {
			missing = s
		}
	}
	if missing == "" {
		t.Skip("this kernel has every IPVS scheduler's module")
	}
	v, _ := e.open(t, Options{})
	err := v.Apply([]dataplane.Service{{ServiceKey: svcKey("10.79.0.1", 80, lvs.TCP), Scheduler: missing,
		Reals: []dataplane.Real{{Addr: addr("10.80.0.1"), Port: 80, Weight: 1, Forward: lvs.DR}}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is the kernel module ip_vs_"+missing+" available?")
}
