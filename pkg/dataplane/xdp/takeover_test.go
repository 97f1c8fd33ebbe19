package xdp

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
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
	open := func() *Dataplane {
		var x *Dataplane
		require.NoError(t, ns.Do(func() (err error) {
			x, err = Open(Config{PinDir: pin, Resolver: res, MaxConns: 4096, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
			return err
		}))
		return x
	}
	svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "wrr",
		Reals: []dataplane.Real{{Addr: realAddr(1), Port: 80, Weight: 4, Forward: lvs.DR}, {Addr: realAddr(2), Port: 80, Weight: 3, Forward: lvs.DR}, {Addr: realAddr(3), Port: 80, Weight: 2, Forward: lvs.DR}}}

	x := open()
	apply(t, ns, x, svc)
	pick := func(x *Dataplane, sport uint16) int {
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
	// IPVS: a service filled with 4,3,2 one real at a time starts at cw 1:
	// A B C, then A A B A B C.
	ds := []sched.Dest{{Weight: 4}, {Weight: 3}, {Weight: 2}}
	ref := sched.WRRFilled(ds)
	var want []int
	for range 9 {
		want = append(want, ref.Pick(ds)+1)
	}
	assert.Equal(t, []int{1, 2, 3, 1, 1, 2, 1, 2, 3}, want)
	assert.Equal(t, want, got)

	// Applying the same config changes nothing; a weight change continues
	// from the same place as IPVS's dest_changed does.
	apply(t, ns, x, svc)
	svc.Reals[2].Weight = 0
	apply(t, ns, x, svc)
	got = nil
	for i := range 9 {
		got = append(got, pick(x, uint16(5000+i)))
	}
	// dest_changed keeps IPVS's cw and restarts at the head.
	ds[2].Weight = 0
	ref.Changed(ds)
	want = nil
	for range 9 {
		want = append(want, ref.Pick(ds)+1)
	}
	assert.Equal(t, want, got)
}

// A pinned stats map another build made (fewer reasons: the build before
// TUN had 11) is replaced, its counts lost, rather than refusing to take
// over everything beside it; any other incompatible pinned map still
// refuses, naming the directory.
func TestTakeoverReplacesOldCounters(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	pin := "/sys/fs/bpf/xlb-test-" + testutil.Suffix()
	require.NoError(t, os.MkdirAll(pin, 0o700))
	t.Cleanup(func() { os.RemoveAll(pin) })
	pinOld := func(name string, typ ebpf.MapType, key, value, entries uint32) {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: typ, KeySize: key, ValueSize: value, MaxEntries: entries})
		require.NoError(t, err)
		defer m.Close()
		require.NoError(t, m.Pin(filepath.Join(pin, name)))
	}
	pinOld(xlbMapStats, ebpf.PerCPUArray, 4, 8, 11)
	var logs strings.Builder
	var x *Dataplane
	require.NoError(t, ns.Do(func() (err error) {
		x, err = Open(Config{PinDir: pin, Resolver: staticResolver{}, MaxConns: 4096,
			Logger: slog.New(slog.NewTextHandler(&logs, nil)), SweepInterval: time.Hour})
		return err
	}))
	st, err := x.Stats()
	require.NoError(t, err)
	assert.Contains(t, st.Reasons, "check_reply", "the new build's reasons are counted")
	assert.Contains(t, logs.String(), "pinned map made by another build: replaced")
	require.NoError(t, x.Close())

	// The flow table is not counters: refused, with the way out.
	require.NoError(t, os.MkdirAll(pin, 0o700))
	pinOld(xlbMapReals, ebpf.Array, 4, 32, 16)
	err = ns.Do(func() (err error) {
		x, err = Open(Config{PinDir: pin, Resolver: staticResolver{}, MaxConns: 4096, Logger: quiet, SweepInterval: time.Hour})
		return err
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "made by a different xlb build or map size")
}
