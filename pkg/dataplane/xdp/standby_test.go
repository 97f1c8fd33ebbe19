package xdp

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// A service on standby (its VRRP instance is BACKUP here) forwards nothing:
// new and established flows go to the kernel. Leaving standby forwards at
// once, established flows to the real they had.
func TestStandbyFollowsTheRole(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{
		realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC},
		realAddr(2): {Ifindex: 1, MAC: realMAC(2), SrcMAC: srcMAC},
	}
	x := openTest(t, ns, res)
	svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
		Reals: []dataplane.Real{{Addr: realAddr(1), Port: 80, Weight: 1, Forward: lvs.DR}, {Addr: realAddr(2), Port: 80, Weight: 1, Forward: lvs.DR}}}
	setStandby := func(on bool) {
		t.Helper()
		require.NoError(t, ns.Do(func() error { return x.SetStandby(map[netip.Addr]bool{vip: on}) }))
	}

	// BACKUP from the start: a SYN is the kernel's, and counted as standby.
	setStandby(true)
	apply(t, ns, x, svc)
	before := reasons(t, x)
	ret, _ := run(t, ns, x, syn(1000).Bytes())
	assert.EqualValues(t, xdpPass, ret, "a BACKUP must not forward a new flow")
	assert.EqualValues(t, 1, reasons(t, x)["standby"]-before["standby"])

	// MASTER: the flow goes to a real.
	setStandby(false)
	ret, out := run(t, ns, x, syn(1000).Bytes())
	require.EqualValues(t, xdpTX, ret)
	first := append([]byte(nil), out[0:6]...)
	ack := syn(1000)
	ack.TCPFlags = testutil.TCPAck
	ret, _ = run(t, ns, x, ack.Bytes())
	require.EqualValues(t, xdpTX, ret)

	// BACKUP again: the established flow is the kernel's too, and so is
	// an ICMP error about it.
	setStandby(true)
	before = reasons(t, x)
	ret, _ = run(t, ns, x, ack.Bytes())
	assert.EqualValues(t, xdpPass, ret, "a BACKUP must not forward an established flow")
	ret, _ = run(t, ns, x, syn(1001).Bytes())
	assert.EqualValues(t, xdpPass, ret)
	assert.EqualValues(t, 2, reasons(t, x)["standby"]-before["standby"])

	// MASTER again: the flow continues to its real, and the new SYN is
	// scheduled (rr goes on to the other real).
	setStandby(false)
	ret, out = run(t, ns, x, ack.Bytes())
	require.EqualValues(t, xdpTX, ret)
	assert.Equal(t, first, out[0:6], "the established flow keeps its real across standby")
	ret, out = run(t, ns, x, syn(1001).Bytes())
	require.EqualValues(t, xdpTX, ret)
	assert.NotEqual(t, first, out[0:6])

	st, err := x.Stats()
	require.NoError(t, err)
	require.Len(t, st.Services, 1)
	assert.EqualValues(t, 2, st.Services[0].Conns, "standby packets are not counted as forwarded")
}

// A restarted process taking over the pinned maps keeps the standby role.
func TestStandbySurvivesTakeover(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "wrr",
		Reals: []dataplane.Real{{Addr: realAddr(1), Port: 80, Weight: 1, Forward: lvs.DR}}}
	require.NoError(t, ns.Do(func() error { return x.SetStandby(map[netip.Addr]bool{vip: true}) }))
	apply(t, ns, x, svc)
	var rec *recovered
	require.NoError(t, ns.Do(func() (err error) {
		rec, err = recoverTables(&x.objs, x.lim, x.log)
		return err
	}))
	require.Len(t, rec.t.services, 1)
	assert.Equal(t, map[netip.Addr]bool{vip: true}, rec.standby)
	for _, s := range rec.t.services {
		assert.Equal(t, lvs.SvcFlags(0), s.flags)
	}
}
