package xdp

import (
	"log/slog"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// onCPU0 runs one frame through the program on CPU 0: flood mode counts
// new flows per CPU, and a test of its threshold must stay on one.
func onCPU0(t *testing.T, ns *testutil.NS, x *Dataplane, frame []byte) (uint32, []byte) {
	t.Helper()
	var ret uint32
	out := make([]byte, len(frame)+64)
	opts := &ebpf.RunOptions{Data: frame, DataOut: out}
	require.NoError(t, ns.Do(func() error {
		var was unix.CPUSet
		if err := unix.SchedGetaffinity(0, &was); err != nil {
			return err
		}
		var cpu0 unix.CPUSet
		cpu0.Set(0)
		if err := unix.SchedSetaffinity(0, &cpu0); err != nil {
			return err
		}
		defer unix.SchedSetaffinity(0, &was)
		var err error
		ret, err = x.objs.XlbXdp.Run(opts)
		return err
	}))
	return ret, opts.DataOut
}

// Flood mode: past the rate, new flows of an mh service go by its table
// with no flow entry, and so do their later packets, to the same real; a
// wlc service (whose scheduler reads the connection counts) makes its
// entries whatever the rate.
func TestFloodModeStateless(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{}
	mh := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "mh"}
	wlc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 81, Protocol: lvs.TCP}, Scheduler: "wlc"}
	for i := 1; i <= 4; i++ {
		res[realAddr(i)] = NextHop{Ifindex: 1, MAC: realMAC(i), SrcMAC: srcMAC}
		mh.Reals = append(mh.Reals, dataplane.Real{Addr: realAddr(i), Port: 80, Weight: 1, Forward: lvs.DR})
		wlc.Reals = append(wlc.Reals, dataplane.Real{Addr: realAddr(i), Port: 81, Weight: 1, Forward: lvs.DR})
	}
	const rate = 5
	var x *Dataplane
	require.NoError(t, ns.Do(func() (err error) {
		x, err = Open(Config{PinDir: "/sys/fs/bpf/xlb-test-" + testutil.Suffix(), Resolver: res, MaxConns: 4096,
			Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), SweepInterval: time.Hour, FloodRate: rate})
		return err
	}))
	t.Cleanup(func() { require.NoError(t, x.Close()) })
	apply(t, ns, x, mh, wlc)

	flows := func() int { return x.ft.live() + connEntries(t, x.objs.Conns, x.objs.HalfOpen) }
	frame := func(port, sport uint16, flags uint8) []byte {
		f := syn(sport)
		f.DstPort, f.TCPFlags = port, flags
		return f.Bytes()
	}
	// Within one second, on one CPU: the first `rate` new flows get
	// entries, the rest none.
	before := reasons(t, x)
	macs := map[uint16][]byte{}
	for i := range uint16(3 * rate) {
		v, out := onCPU0(t, ns, x, frame(80, 5000+i, testutil.TCPSyn))
		require.EqualValues(t, xdpTX, v)
		macs[5000+i] = out[:6]
	}
	after := reasons(t, x)
	assert.EqualValues(t, 2*rate, after["flood_stateless"]-before["flood_stateless"])
	assert.Equal(t, rate, flows(), "flow entries made below the rate only")
	st, err := x.Stats()
	require.NoError(t, err)
	for _, s := range st.Services {
		if s.Port == 80 {
			assert.EqualValues(t, 3*rate, s.Conns, "every SYN counts as a new connection")
		}
	}

	// A later packet of a flow with no entry goes by the table too: to
	// the real its SYN went to, not to the kernel.
	before = reasons(t, x)
	for sport := uint16(5000 + 2*rate); sport < 5000+3*rate; sport++ {
		v, out := onCPU0(t, ns, x, frame(80, sport, testutil.TCPAck))
		require.EqualValues(t, xdpTX, v)
		assert.Equal(t, macs[sport], out[:6], "flow %d stays on its real", sport)
	}
	after = reasons(t, x)
	assert.EqualValues(t, rate, after["flood_stateless"]-before["flood_stateless"])
	assert.Zero(t, after["not_syn"]-before["not_syn"])

	// wlc reads the connection counts: its flows get entries whatever the
	// rate, and an ACK without a flow is the kernel's, as always.
	before = reasons(t, x)
	n := flows()
	for i := range uint16(3 * rate) {
		v, _ := onCPU0(t, ns, x, frame(81, 6000+i, testutil.TCPSyn))
		require.EqualValues(t, xdpTX, v)
	}
	v, _ := onCPU0(t, ns, x, frame(81, 6999, testutil.TCPAck))
	assert.EqualValues(t, xdpPass, v)
	after = reasons(t, x)
	assert.Zero(t, after["flood_stateless"]-before["flood_stateless"])
	assert.EqualValues(t, 1, after["not_syn"]-before["not_syn"])
	assert.Equal(t, n+3*rate, flows())
}
