package xdp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// checkGet is what a health checker does: an HTTP GET to the real's own
// address, from the director, its socket marked (mark 0: unmarked, as
// keepalived's checkers connect). It returns the real's name.
func checkGet(t *testing.T, ns *testutil.NS, real netip.Addr, mark uint32) (string, error) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
			err = ns.Do(func() (err error) {
				d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
					var serr error
					if err := rc.Control(func(fd uintptr) {
						if mark != 0 {
							serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
						}
					}); err != nil {
						return err
					}
					return serr
				}}
				conn, err = d.DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
	}}
	resp, err := c.Get(fmt.Sprintf("http://%s/", netip.AddrPortFrom(real, 80)))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Checks through the data path: a check marked with CheckTarget's mark
// reaches the real through the VIP, as a client does; when the real loses
// the VIP from lo its clients are black-holed, and the marked check fails
// with them while an unmarked one (keepalived's) still passes.
func TestCheckThroughVIP(t *testing.T) {
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newDRRig(t, 2, mode)
			topo := r.topo
			svc := r.service("rr", 1, 1)
			r.apply(t, svc)
			r.waitResolved(t)
			mark, release, err := r.x.CheckTarget(r.svc, svc.Reals[0])
			require.NoError(t, err)
			defer release()
			assert.Equal(t, uint32(0x786c0000), mark&0xffff0000)
			r1 := topo.RealAddrs[0]

			name, err := checkGet(t, topo.Director, r1, mark)
			require.NoError(t, err, "a marked check of a healthy real")
			assert.Equal(t, "r1", name)
			st, err := r.x.Stats()
			require.NoError(t, err)
			assert.NotZero(t, st.Reasons["check_reply"], "the real's answers came from the VIP")

			// The real loses the VIP: clients get nothing from it.
			require.NoError(t, topo.Reals[0].IP("addr", "del", topo.VIP.String()+"/32", "dev", "lo"))
			_, err = checkGet(t, topo.Director, r1, mark)
			assert.Error(t, err, "the marked check fails as the real's clients do")
			name, err = checkGet(t, topo.Director, r1, 0)
			require.NoError(t, err, "keepalived's check, to the real's own address, still passes")
			assert.Equal(t, "r1", name)

			// It gets the VIP back.
			require.NoError(t, topo.Reals[0].IP("addr", "add", topo.VIP.String()+"/32", "dev", "lo"))
			name, err = checkGet(t, topo.Director, r1, mark)
			require.NoError(t, err)
			assert.Equal(t, "r1", name)

			// The other real, unmarked traffic, and clients are untouched.
			name, err = checkGet(t, topo.Director, topo.RealAddrs[1], 0)
			require.NoError(t, err)
			assert.Equal(t, "r2", name)
			assert.Len(t, r.get(t, 2), 2)

			// A real reached by an interface without the tc egress
			// program: refused (its checks would pass unchanged).
			require.NoError(t, topo.Director.IP("link", "add", "side0", "type", "veth", "peer", "name", "side1"))
			require.NoError(t, topo.Director.IP("link", "set", "side0", "up"))
			require.NoError(t, topo.Director.IP("addr", "add", "10.99.7.1/24", "dev", "side0"))
			aside := dataplane.Real{Addr: netip.MustParseAddr("10.99.7.5"), Port: 80, Weight: 1, Forward: lvs.DR}
			svc.Reals = append(svc.Reals, aside)
			r.apply(t, svc)
			_, _, err = r.x.CheckTarget(r.svc, aside)
			assert.ErrorContains(t, err, "where xlb has no tc egress program")

			// Not a DR or TUN real: refused, with the reason.
			_, _, err = r.x.CheckTarget(r.svc, dataplane.Real{Addr: r1, Port: 80, Weight: 1, Forward: lvs.NAT})
			assert.ErrorContains(t, err, "a NAT real is checked at its own address")
		})
	}
}

// Checks through the data path for an IPv6 service: a marked check of an
// IPv6 DR real goes to the VIP (xlb_tc_check, a 16-byte address change in
// the checksum), the real's answer comes back with its own address
// (check_reply6); a real that lost the VIP from lo fails it while a check
// of its own address still passes.
func TestCheckThroughVIP6(t *testing.T) {
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newDRRig(t, 2, mode)
			topo := r.topo
			vip := netip.MustParseAddr("fd77:1::100")
			reals := ipv6Topology(t, topo, vip)
			svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr"}
			for _, a := range reals {
				svc.Reals = append(svc.Reals, dataplane.Real{Addr: a, Port: 80, Weight: 1, Forward: lvs.DR})
			}
			r.apply(t, svc)
			r.waitResolved(t)
			mark, release, err := r.x.CheckTarget(svc.ServiceKey, svc.Reals[0])
			require.NoError(t, err)
			defer release()

			name, err := checkGet(t, topo.Director, reals[0], mark)
			require.NoError(t, err, "a marked check of a healthy real")
			assert.Equal(t, "r1", name)
			st, err := r.x.Stats()
			require.NoError(t, err)
			assert.NotZero(t, st.Reasons["check_reply"], "the real's answers came from the VIP")

			require.NoError(t, topo.Reals[0].IP("addr", "del", vip.String()+"/128", "dev", "lo"))
			_, err = checkGet(t, topo.Director, reals[0], mark)
			assert.Error(t, err, "the marked check fails as the real's clients do")
			name, err = checkGet(t, topo.Director, reals[0], 0)
			require.NoError(t, err, "keepalived's check, to the real's own address, still passes")
			assert.Equal(t, "r1", name)
		})
	}
}
