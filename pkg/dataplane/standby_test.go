package dataplane

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
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
	svc := Service{ServiceKey: ServiceKey{Addr: vip, Port: 80, Protocol: TCP}, Scheduler: "rr",
		Reals: []Real{{Addr: realAddr(1), Port: 80, Weight: 1}, {Addr: realAddr(2), Port: 80, Weight: 1}}}
	standby := svc
	standby.Standby = true

	// BACKUP from the start: a SYN is the kernel's, and counted as standby.
	apply(t, ns, x, standby)
	before := reasons(t, x)
	ret, _ := run(t, ns, x, syn(1000).Bytes())
	assert.EqualValues(t, xdpPass, ret, "a BACKUP must not forward a new flow")
	assert.EqualValues(t, 1, reasons(t, x)["standby"]-before["standby"])

	// MASTER: the flow goes to a real.
	apply(t, ns, x, svc)
	ret, out := run(t, ns, x, syn(1000).Bytes())
	require.EqualValues(t, xdpTX, ret)
	first := append([]byte(nil), out[0:6]...)
	ack := syn(1000)
	ack.TCPFlags = testutil.TCPAck
	ret, _ = run(t, ns, x, ack.Bytes())
	require.EqualValues(t, xdpTX, ret)

	// BACKUP again: the established flow is the kernel's too, and so is
	// an ICMP error about it.
	apply(t, ns, x, standby)
	before = reasons(t, x)
	ret, _ = run(t, ns, x, ack.Bytes())
	assert.EqualValues(t, xdpPass, ret, "a BACKUP must not forward an established flow")
	ret, _ = run(t, ns, x, syn(1001).Bytes())
	assert.EqualValues(t, xdpPass, ret)
	assert.EqualValues(t, 2, reasons(t, x)["standby"]-before["standby"])

	// MASTER again: the flow continues to its real, and the new SYN is
	// scheduled (rr goes on to the other real).
	apply(t, ns, x, svc)
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
	svc := Service{ServiceKey: ServiceKey{Addr: vip, Port: 80, Protocol: TCP}, Scheduler: "wrr",
		Reals: []Real{{Addr: realAddr(1), Port: 80, Weight: 1}}, Standby: true}
	apply(t, ns, x, svc)
	var tabs *tables
	require.NoError(t, ns.Do(func() (err error) {
		tabs, err = recoverTables(&x.objs, x.log)
		return err
	}))
	require.Len(t, tabs.services, 1)
	for _, s := range tabs.services {
		assert.True(t, s.standby)
		assert.Equal(t, SchedFlags(0), s.flags)
	}
}
