package xdp

import (
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

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

// NAT on standby: the real's replies and ICMP errors are the kernel's too,
// by the flow's real when the flow is there and by the VIP when the flow is
// gone (the NAT source filter keeps standby reals, so a flip need not
// rewrite it). Back to MASTER, the reply is translated again.
func TestStandbyNAT(t *testing.T) {
	ns, x := newNATTest(t)
	v, _ := run(t, ns, x, syn(44000).Bytes())
	require.EqualValues(t, xdpTX, v)
	q := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: client, Dst: vip, Proto: 17, SrcPort: 5002, DstPort: 53, Payload: []byte("query")}
	v, _ = run(t, ns, x, q.Bytes())
	require.EqualValues(t, xdpTX, v)
	reply := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: client,
		Proto: 6, SrcPort: 8080, DstPort: 44000, TCPFlags: testutil.TCPAck, Payload: []byte("hello")}
	arrived := q
	arrived.Dst, arrived.DstPort = realAddr(1), 5353
	unreach := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: client, Proto: 1,
		Payload: icmpError(3, 3, 0, ipOf(arrived.Bytes()))}
	filters := func() ([]uint32, []uint32) {
		vf, nf := make([]uint32, x.lim.filter), make([]uint32, x.lim.filter)
		for i := range uint32(x.lim.filter) {
			require.NoError(t, x.objs.VipFilter.Lookup(&i, &vf[i]))
			require.NoError(t, x.objs.NatSrcFilter.Lookup(&i, &nf[i]))
		}
		return vf, nf
	}
	vf, nf := filters()

	require.NoError(t, ns.Do(func() error { return x.SetStandby(map[netip.Addr]bool{vip: true}) }))
	vf2, nf2 := filters()
	assert.Equal(t, vf, vf2, "a flip leaves the VIP filter alone")
	assert.Equal(t, nf, nf2, "a flip leaves the NAT source filter alone")
	before := reasons(t, x)
	v, out := run(t, ns, x, reply.Bytes())
	assert.EqualValues(t, xdpPass, v)
	assert.Equal(t, reply.Bytes(), out, "a standby NAT flow's reply is not translated")
	v, out = run(t, ns, x, unreach.Bytes())
	assert.EqualValues(t, xdpPass, v)
	assert.Equal(t, unreach.Bytes(), out, "nor an ICMP error from its real")
	assert.EqualValues(t, 1, reasons(t, x)["standby"]-before["standby"])

	// The TCP flow gone (its reverse mapping still there): the VIP says
	// standby.
	var k xlbConnKey
	var c xlbConn
	x.ft.each(func(k xlbConnKey, _ *xlbConn) { require.NoError(t, x.flows4().Delete(&k)) })
	for _, m := range []*ebpf.Map{x.objs.Conns, x.objs.HalfOpen} {
		it := m.Iterate()
		var keys []xlbConnKey
		for it.Next(&k, &c) {
			keys = append(keys, k)
		}
		for i := range keys {
			require.NoError(t, m.Delete(&keys[i]))
		}
	}
	v, out = run(t, ns, x, reply.Bytes())
	assert.EqualValues(t, xdpPass, v)
	assert.Equal(t, reply.Bytes(), out)

	require.NoError(t, ns.Do(func() error { return x.SetStandby(nil) }))
	v, out = run(t, ns, x, reply.Bytes())
	assert.EqualValues(t, xdpPass, v, "no neighbour for the client here: the kernel forwards it")
	want := reply
	want.Src, want.SrcPort = vip, 80
	assert.Equal(t, want.Bytes(), out, "MASTER again: translated back to the VIP")
}
