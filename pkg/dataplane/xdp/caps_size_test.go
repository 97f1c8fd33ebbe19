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

// A data plane sized beyond the built-in limits (--max-services,
// --max-reals) takes that many: Apply checked against the built-in sizes
// and refused a 10k-service configuration the flags had made room for.
func TestApplyHonoursSizes(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	const n = 4200 // the built-in holds 4096
	var x *Dataplane
	require.NoError(t, ns.Do(func() (err error) {
		x, err = Open(Config{PinDir: "/sys/fs/bpf/xlb-size-" + testutil.Suffix(), Resolver: res, MaxConns: 4096,
			MaxServices: n, Logger: quiet})
		return err
	}))
	t.Cleanup(func() { x.Close() })
	var svcs []dataplane.Service
	for i := range n + 1 {
		v := netip.AddrFrom4([4]byte{10, 95, byte(i >> 8), byte(i)})
		svcs = append(svcs, dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: v, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: realAddr(1), Port: 80, Weight: 1, Forward: lvs.DR}}})
	}
	assert.Equal(t, n, x.Caps().MaxServices)
	require.NoError(t, ns.Do(func() error { return x.Apply(svcs[:n]) }))
	st, err := x.Stats()
	require.NoError(t, err)
	assert.Len(t, st.Services, n)
	err = ns.Do(func() error { return x.Apply(svcs) })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "4201 virtual services; the XDP data plane holds 4200 (--max-services)")
}
