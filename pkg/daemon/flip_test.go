package daemon

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

// A VRRP role flip writes only the data plane's standby flags: a BACKUP
// that becomes MASTER adds its VIP (and sends its gratuitous ARPs) within
// 50 ms of its first advert as MASTER, although every one of its services
// has a real whose MAC is not known (no host answers ARP for it), and its
// adverts keep their interval. Before the flip wrote only flags, it
// re-planned every service and waited up to 500 ms per service for the
// unknown MACs, in the VRRP goroutine: 2 s with four such services.
func TestRoleFlipDoesNotWait(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	testutil.RequireXDPKernel(t)
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 1, Native: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })

	var b strings.Builder
	b.WriteString(`vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        10.77.1.100/32
    }
}
`)
	const services = 6
	for i := range services {
		// 10.77.0.11 answers ARP; 10.77.0.9x is nobody's.
		fmt.Fprintf(&b, "virtual_server 10.77.1.100 %d {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n"+
			"    real_server 10.77.0.11 %d { weight 1 }\n    real_server 10.77.0.%d %d { weight 1 }\n}\n", 80+i, 80+i, 90+i, 80+i)
	}
	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(b.String()), 0o644))

	// Listen on the LAN from the client's side of the bridge.
	capture, err := testutil.StartCapture(topo.Client.Do, "eth0")
	require.NoError(t, err)
	t.Cleanup(func() { capture.Close() })

	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath})
	require.Eventually(t, func() bool { return d.vrrpState(t) == "MASTER" }, 10*time.Second, 20*time.Millisecond)
	// Three more adverts as MASTER, to measure their interval.
	time.Sleep(3500 * time.Millisecond)
	st := d.status(t)
	require.Len(t, st.Services, services)
	for _, s := range st.Services {
		require.Len(t, s.Reals, 2)
		assert.False(t, s.Reals[1].Resolved, "%s: the real with no host has no MAC", s.Reals[1].Addr)
		assert.False(t, s.Standby)
	}

	director, vip := netip.MustParseAddr("10.77.0.2"), netip.MustParseAddr("10.77.1.100")
	var adverts, garps []time.Time
	for _, f := range capture.Frames(0) {
		switch {
		case isVRRPFrom(f.Frame, director):
			adverts = append(adverts, f.At)
		case isGARPFor(f.Frame, vip):
			garps = append(garps, f.At)
		}
	}
	require.GreaterOrEqual(t, len(adverts), 3, "adverts as MASTER")
	require.NotEmpty(t, garps, "gratuitous ARPs for the VIP")
	flip := garps[0].Sub(adverts[0])
	t.Logf("first advert as MASTER to first gratuitous ARP (VIP added): %v; %d adverts, intervals %v", flip, len(adverts), intervals(adverts))
	assert.Less(t, flip, 50*time.Millisecond, "the VIP is added within 50 ms of the state change")
	assert.GreaterOrEqual(t, flip, time.Duration(0), "the advert leaves before the VIP is added")
	for i, gap := range intervals(adverts) {
		assert.InDelta(t, time.Second, gap, float64(150*time.Millisecond), "advert %d came %v after the one before", i+1, gap)
	}
	assert.Contains(t, d.logs(), "real has no next hop")
}

func intervals(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}

// isVRRPFrom says whether an Ethernet frame is an IPv4 VRRP advert from
// src.
func isVRRPFrom(f []byte, src netip.Addr) bool {
	if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:14]) != 0x0800 {
		return false
	}
	ip := f[14:]
	return ip[9] == 112 && netip.AddrFrom4([4]byte(ip[12:16])) == src
}

// isGARPFor says whether an Ethernet frame is a gratuitous ARP for vip:
// sender and target address both the VIP.
func isGARPFor(f []byte, vip netip.Addr) bool {
	if len(f) < 14+28 || binary.BigEndian.Uint16(f[12:14]) != 0x0806 {
		return false
	}
	arp := f[14:]
	return netip.AddrFrom4([4]byte(arp[14:18])) == vip && netip.AddrFrom4([4]byte(arp[24:28])) == vip
}
