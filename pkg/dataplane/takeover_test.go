package dataplane

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

// A second process opening the same pin directory sees the same services,
// and rr/wrr continue exactly where the first left off.
func TestTakeoverContinuesSchedulers(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{}
	for i := 1; i <= 3; i++ {
		res[realAddr(i)] = NextHop{Ifindex: 1, MAC: realMAC(i), SrcMAC: srcMAC}
	}
	pin := "/sys/fs/bpf/xlb-test-" + testutil.Suffix()
	open := func() *XDP {
		var x *XDP
		require.NoError(t, ns.Do(func() (err error) {
			x, err = OpenXDP(Config{PinDir: pin, Resolver: res, MaxConns: 4096, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
			return err
		}))
		return x
	}
	svc := Service{ServiceKey: ServiceKey{Addr: vip, Port: 80, Protocol: TCP}, Scheduler: "wrr",
		Reals: []Real{{Addr: realAddr(1), Port: 80, Weight: 4}, {Addr: realAddr(2), Port: 80, Weight: 3}, {Addr: realAddr(3), Port: 80, Weight: 2}}}

	x := open()
	apply(t, ns, x, svc)
	pick := func(x *XDP, sport uint16) int {
		v, out := run(t, ns, x, syn(sport).Bytes())
		require.EqualValues(t, xdpTX, v)
		return int(out[5])
	}
	var got []int
	for i := range 4 {
		got = append(got, pick(x, uint16(3000+i)))
	}
	require.NoError(t, x.Release())

	x = open()
	t.Cleanup(func() { assert.NoError(t, x.Close()) })
	require.Len(t, x.state.services, 1)
	for _, s := range x.state.services {
		require.Len(t, s.seq, 9, "the sequence was regenerated from the pinned start state")
	}
	for i := range 5 {
		got = append(got, pick(x, uint16(4000+i)))
	}
	// IPVS: 4,3,2 gives A A B A B C A B C.
	assert.Equal(t, []int{1, 1, 2, 1, 2, 3, 1, 2, 3}, got)

	// Applying the same config changes nothing; a weight change continues
	// from the same place as IPVS's dest_changed does.
	apply(t, ns, x, svc)
	svc.Reals[2].Weight = 0
	apply(t, ns, x, svc)
	got = nil
	for i := range 9 {
		got = append(got, pick(x, uint16(5000+i)))
	}
	// After 9 picks IPVS is at C with cw 1; dest_changed keeps cw 1 and
	// restarts at the head: A B, then cw wraps to 4 with weights 4,3,0.
	assert.Equal(t, []int{1, 2, 1, 1, 2, 1, 2, 1, 2}, got)
}
