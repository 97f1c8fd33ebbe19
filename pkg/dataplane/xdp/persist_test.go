package xdp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// Persistence (ipvsadm -p 1 -M 255.255.255.0): a client's connections
// stick to one real under rr; a client outside the netmask lands
// elsewhere; a template outlives its timeout while it controls a live
// connection, and expiry releases the client.
func TestPersistence(t *testing.T) {
	r := newSchedRig(t, "rr", 0, 1, 1, 1)
	r.svc.Persistence, r.svc.PersistenceMask = time.Second, 0xffffff00
	apply(t, r.ns, r.x, r.svc)
	// Shorten CLOSE and SYN_RECV to 1 s: the SYN-only flows below end soon.
	one := uint32(1)
	for _, st := range []xlbXlbCtState{xlbXlbCtStateXLB_CT_CLOSE, xlbXlbCtStateXLB_CT_SYN_RECV} {
		require.NoError(t, r.x.objs.Timeouts.Update(&st, &one, ebpf.UpdateAny))
	}

	from := func(src string) testutil.Frame {
		f := newFlow()
		f.Src = netip.MustParseAddr(src)
		return f
	}
	first := r.pick(from("192.0.2.7"))
	for range 5 {
		assert.Equal(t, first, r.pick(from("192.0.2.7")), "same client, same real")
		assert.Equal(t, first, r.pick(from("192.0.2.99")), "same /24, same real")
	}
	other := r.pick(from("198.51.100.7"))
	assert.NotEqual(t, first, other, "rr gives another /24 the next real")

	// One connection stays established; the SYN-only ones end in 1 s.
	live := from("192.0.2.7")
	require.Equal(t, first, r.pick(live))
	ack := live
	ack.TCPFlags = testutil.TCPAck
	v, _ := run(t, r.ns, r.x, ack.Bytes())
	require.EqualValues(t, xdpTX, v)
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, r.x.Sweep())
	assert.Equal(t, first, r.pick(from("192.0.2.7")), "the template outlives its timeout while it controls a connection")

	// Everything of that client ends: RST the live one and wait.
	rst := live
	rst.TCPFlags = testutil.TCPRst
	v, _ = run(t, r.ns, r.x, rst.Bytes())
	require.EqualValues(t, xdpTX, v)
	time.Sleep(2500 * time.Millisecond)
	require.NoError(t, r.x.Sweep())
	require.NoError(t, r.x.Sweep())
	var n int
	var k xlbTmplKey
	var tv xlbTmpl
	it := r.x.objs.Templates.Iterate()
	for it.Next(&k, &tv) {
		if k.Client.addr(k.Family) == netip.MustParseAddr("192.0.2.0") {
			n++
		}
	}
	assert.Zero(t, n, "the client's template expired")
	// rr goes on from where it was: the client is scheduled afresh.
	next := r.pick(from("192.0.2.7"))
	assert.NotEqual(t, -1, next)
	assert.Equal(t, (other+1)%3, next, "released: scheduled by rr again")
}

// A netmask that is not contiguous (ipvsadm -M 255.0.255.0), as IPVS
// applies it: clients that agree in the first and third bytes share a
// template, whatever the second and fourth; the data plane reports the
// mask as given.
func TestPersistenceMaskNotContiguous(t *testing.T) {
	r := newSchedRig(t, "rr", 0, 1, 1, 1)
	r.svc.Persistence, r.svc.PersistenceMask = time.Minute, 0xff00ff00
	apply(t, r.ns, r.x, r.svc)
	from := func(src string) testutil.Frame {
		f := newFlow()
		f.Src = netip.MustParseAddr(src)
		return f
	}
	first := r.pick(from("192.0.2.7"))
	for range 3 {
		assert.Equal(t, first, r.pick(from("192.77.2.200")), "the same under 255.0.255.0")
	}
	assert.NotEqual(t, first, r.pick(from("192.0.3.7")), "the third byte differs: another template, the next real")
	st, err := r.x.Stats()
	require.NoError(t, err)
	require.Len(t, st.Services, 1)
	assert.Equal(t, lvs.Netmask(0xff00ff00), st.Services[0].Service.PersistenceMask)
}
