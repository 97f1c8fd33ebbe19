package daemon

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/director"
	"github.com/xlbproject/xlb/pkg/vrrpd"
)

// recorder is a data plane that records what the daemon asks of it, in
// order (a fake for the composition's logic only).
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) log(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

func (r *recorder) Caps() dataplane.Caps { c, _ := CapsFor("xdp", Options{}); return c }
func (r *recorder) Apply(s []dataplane.Service) error {
	var vips []string
	for _, svc := range s {
		vips = append(vips, svc.Addr.String())
	}
	r.log("apply %v", vips)
	return nil
}
func (r *recorder) SetStandby(vips map[netip.Addr]bool) error {
	var on []string
	for a, v := range vips {
		if v {
			on = append(on, a.String())
		}
	}
	slices.Sort(on)
	r.log("standby %v", on)
	return nil
}
func (r *recorder) Stats() (dataplane.Stats, error)       { return dataplane.Stats{}, nil }
func (r *recorder) Conns() ([]dataplane.Conn, error)      { return nil, nil }
func (r *recorder) SetTimeouts(dataplane.Timeouts) error  { return nil }
func (r *recorder) Timeouts() (dataplane.Timeouts, error) { return dataplane.Timeouts{}, nil }
func (r *recorder) Close() error                          { return nil }
func (r *recorder) SetDefence(dataplane.Defence) error    { return nil }
func (r *recorder) Defence() (dataplane.DefenceStatus, error) {
	return dataplane.DefenceStatus{}, nil
}

// owner is a VIP owner that governs what vrrpd would and is moved by the
// test through its ActiveFunc.
type owner struct {
	active ActiveFunc
	loads  int
}

func (o *owner) Governs(cfg *config.Config) map[netip.Addr]bool {
	return vrrpd.New(vrrpd.Options{}).Governs(cfg)
}
func (o *owner) Load(*config.Config)    { o.loads++ }
func (o *owner) Status(*control.Status) {}
func (o *owner) Stop()                  {}

const ownerConfig = `
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress { %s }
}
virtual_server 10.0.0.100 80 {
    lb_kind DR
    protocol TCP
    real_server 10.0.0.11 80 { weight 1 }
}
virtual_server 10.0.0.200 80 {
    lb_kind DR
    protocol TCP
    real_server 10.0.0.12 80 { weight 1 }
}
`

// A VIP that a VIP owner governs is on standby until the owner says it is
// active here; a VIP no owner governs always forwards. The standby set
// reaches the data plane before the services do (a BACKUP never forwards
// for a moment at start), and a role flip is a standby change alone.
func TestVIPOwnerDecidesStandby(t *testing.T) {
	dp := &recorder{}
	dir := director.New(t.Context(), director.Options{Dataplane: dp})
	o := &owner{}
	d := &daemon{dir: dir, dp: &opened{Dataplane: dp, kind: "xdp"}, owners: []VIPOwner{o}}
	d.seats = newSeats(1, func(s map[netip.Addr]bool) { require.NoError(t, dir.SetStandby(s)) })
	o.active = d.seats.activeFunc(0)
	parse := func(vips string) *config.Config {
		cfg, err := config.ParseBytes("keepalived.conf", []byte(fmt.Sprintf(ownerConfig, vips)))
		require.NoError(t, err)
		return cfg
	}

	require.NoError(t, d.load(parse("10.0.0.100/32")))
	assert.Equal(t, []string{"standby [10.0.0.100]", "apply [10.0.0.100 10.0.0.200]"}, dp.take())
	assert.Equal(t, 1, o.loads)

	o.active(map[netip.Addr]bool{netip.MustParseAddr("10.0.0.100"): true})
	assert.Equal(t, []string{"standby []"}, dp.take(), "MASTER: flags only, no Apply")
	o.active(map[netip.Addr]bool{})
	assert.Equal(t, []string{"standby [10.0.0.100]"}, dp.take())

	// A reload that gives the VIP to no owner: it forwards.
	require.NoError(t, d.load(parse("10.0.0.150/32")))
	assert.Equal(t, []string{"standby [10.0.0.150]", "apply [10.0.0.100 10.0.0.200]"}, dp.take())

	// An invalid configuration changes nothing, standby included.
	bad, err := config.ParseBytes("keepalived.conf", []byte(fmt.Sprintf(ownerConfig, "10.0.0.200/32")+
		"virtual_server 10.0.0.250 80 {\n    lb_algo lblcr\n    protocol TCP\n    real_server 10.0.0.13 80 { weight 1 }\n}\n"))
	require.NoError(t, err)
	require.Error(t, d.load(bad))
	assert.Empty(t, dp.take())
	assert.Equal(t, 2, o.loads)
}

// A restarted director keeps serving the VIPs of the data plane it took
// over while its VRRP instance starts in BACKUP: they go to standby only
// if the hold ends with the owner not reporting them active, and a VIP
// reported active leaves the hold (so it goes to standby when it stops
// being active).
func TestHeldVIPsWaitForTheOwner(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	var mu sync.Mutex
	var last map[netip.Addr]bool
	s := newSeats(1, func(st map[netip.Addr]bool) {
		mu.Lock()
		defer mu.Unlock()
		last = st
	})
	standby := func() map[netip.Addr]bool {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	s.hold(map[netip.Addr]bool{a: true, b: true}, 200*time.Millisecond)
	s.govern([]map[netip.Addr]bool{{a: true, b: true}})
	assert.Empty(t, standby(), "held: served though the owner has not spoken")
	s.activeFunc(0)(map[netip.Addr]bool{a: true})
	s.activeFunc(0)(map[netip.Addr]bool{})
	assert.Equal(t, map[netip.Addr]bool{a: true}, standby(), "a was reported active, then not: out of the hold")
	require.Eventually(t, func() bool { return len(standby()) == 2 }, 2*time.Second, 10*time.Millisecond,
		"the hold ends: b, never reported active, goes to standby")
}
