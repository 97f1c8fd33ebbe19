package daemon

import (
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/vrrp"
)

// check_unicast_src: a host on the LAN that is not a unicast_peer, knowing
// the password, sends adverts with priority 200. They are dropped, counted
// under unicast_src in xlb status and the metrics, and logged at warn; the
// MASTER holds. The same advert from the listed peer takes MASTER away,
// which shows the forged one would have.
func TestVRRPCheckUnicastSrc(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 1, Backup: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 53
    priority 100
    advert_int 1
    version 2
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    unicast_src_ip 10.77.0.2
    unicast_peer {
        10.77.0.3
    }
    check_unicast_src
    virtual_ipaddress {
        10.77.1.100/32
    }
}
`), 0o644))
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath, Metrics: "127.0.0.1:9611"})
	state := func() string {
		st := d.status(t)
		require.Len(t, st.VRRP, 1)
		return st.VRRP[0].State
	}
	require.Eventually(t, func() bool { return state() == "MASTER" }, 10*time.Second, 50*time.Millisecond)

	advertFrom := func(ns *testutil.NS, n int) {
		var conn *vrrp.Conn
		require.NoError(t, ns.Do(func() (err error) {
			conn, err = vrrp.New("eth0", vrrp.ConnConfig{Peers: []netip.Addr{topo.DirectorAddr}})
			return err
		}))
		defer conn.Close()
		adv := vrrp.Advertisement{Version: vrrp.Version2, Type: vrrp.TypeAdvertisement, VRID: 53, Priority: 200,
			AuthType: vrrp.AuthPass, AuthData: vrrp.Password("s3cret"), AdverInt: 1,
			Addresses: []netip.Addr{netip.MustParseAddr("10.77.1.100")}}
		require.NoError(t, adv.SetChecksum(conn.Source(), topo.DirectorAddr, false))
		msg, err := adv.MarshalBinary()
		require.NoError(t, err)
		for range n {
			require.NoError(t, conn.WriteAdvert(msg, topo.DirectorAddr))
			time.Sleep(250 * time.Millisecond)
		}
	}
	// 4 s of adverts at priority 200: a BACKUP's master-down interval is
	// 3.6 s, so a MASTER that took them would have yielded long before.
	advertFrom(topo.Client, 16)
	st := d.status(t)
	assert.Equal(t, "MASTER", st.VRRP[0].State, "a forged advert from an unlisted source took MASTER")
	assert.Equal(t, uint64(16), st.VRRP[0].Dropped["unicast_src"], "drops by reason: %v", st.VRRP[0].Dropped)
	assert.Contains(t, d.logs(), `advert from 10.77.0.1 dropped (unicast_src)`)
	assert.Contains(t, d.logs(), `level=WARN`)
	assert.Equal(t, 1, strings.Count(d.logs(), "dropped (unicast_src)"), "drop lines are rate-limited")

	mc := &http.Client{Transport: &http.Transport{DialContext: topo.Director.DialContext}, Timeout: 5 * time.Second}
	resp, err := mc.Get("http://127.0.0.1:9611/metrics")
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	f := families["xlb_vrrp_adverts_dropped_total"]
	require.NotNil(t, f)
	var got float64
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "reason" && l.GetValue() == "unicast_src" {
				got = m.GetCounter().GetValue()
			}
		}
	}
	assert.Equal(t, float64(16), got)

	// The listed peer, same advert: MASTER yields.
	advertFrom(topo.Backup, 2)
	require.Eventually(t, func() bool { return state() == "BACKUP" }, 5*time.Second, 50*time.Millisecond)
}
