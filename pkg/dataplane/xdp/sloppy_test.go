package xdp

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/sched"
)

// sloppy_tcp: a connection another director carried arrives here
// mid-stream (ECMP moved it). Without sloppy, its ACKs go to the kernel
// (IPVS schedules only SYNs); with it, an mh service sends them to the real
// the table picks for the client, which is the real the first director
// picked, and the flow starts ESTABLISHED as IPVS's would (NONE -ACK->
// ESTABLISHED). A RST never starts one.
func TestSloppyTCP(t *testing.T) {
	r := newSchedRig(t, "mh", 0, 1, 1, 1, 1)
	ds := r.dests()
	tab := sched.MHTable(ds)
	frame := func(src netip.Addr, sport uint16, flags uint8) testutil.Frame {
		f := syn(sport)
		f.Src, f.TCPFlags = src, flags
		return f
	}
	verdict := func(f testutil.Frame) (uint32, int) {
		v, out := run(t, r.ns, r.x, f.Bytes())
		if v != xdpTX {
			return v, -1
		}
		return v, int(out[5]) - 1
	}
	reasons := func() map[string]uint64 {
		st, err := r.x.Stats()
		require.NoError(t, err)
		return st.Reasons
	}
	src := netip.MustParseAddr("198.51.100.9")
	want := sched.MHPick(tab, ds, sched.AddrFold(src), 0, false)

	v, _ := verdict(frame(src, 40000, testutil.TCPAck))
	assert.EqualValues(t, xdpPass, v, "an ACK without a flow goes to the kernel without sloppy_tcp")
	assert.EqualValues(t, 1, reasons()["not_syn"])

	r.svc.Sloppy = true
	apply(t, r.ns, r.x, r.svc)
	for i, flags := range []uint8{testutil.TCPAck, testutil.TCPAck | 0x08 /* PSH */, testutil.TCPFin | testutil.TCPAck} {
		sport := uint16(40001 + i)
		v, got := verdict(frame(src, sport, flags))
		require.EqualValues(t, xdpTX, v, "flags %#x", flags)
		assert.Equal(t, want, got, "flags %#x: the real mh picks for the client", flags)
		// The next packet of the flow goes the same way.
		v, got = verdict(frame(src, sport, testutil.TCPAck))
		require.EqualValues(t, xdpTX, v)
		assert.Equal(t, want, got)
	}
	conns, err := r.x.Conns()
	require.NoError(t, err)
	states := map[uint16]string{}
	for _, c := range conns {
		states[c.Client.Port()] = c.State
	}
	assert.Equal(t, "ESTABLISHED", states[40001], "NONE -ACK-> ESTABLISHED")
	assert.Equal(t, "ESTABLISHED", states[40002])
	assert.Equal(t, "CLOSE", states[40003], "NONE -FIN-> CLOSE, and an ACK leaves it there (DR: INPUT-ONLY)")

	before := reasons()["not_syn"]
	v, _ = verdict(frame(src, 40010, testutil.TCPRst))
	assert.EqualValues(t, xdpPass, v, "a RST never starts a flow")
	assert.Equal(t, before+1, reasons()["not_syn"])

	// Many clients: each to the real the table picks for it.
	for i := range 200 {
		c := netip.AddrFrom4([4]byte{198, 51, byte(i), byte(i * 7)})
		v, got := verdict(frame(c, 41000, testutil.TCPAck))
		require.EqualValues(t, xdpTX, v)
		require.Equal(t, sched.MHPick(tab, ds, sched.AddrFold(c), 0, false), got, "client %s", c)
	}
}
