package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A VIP is VRRP's or BGP's: xlb check and xlb run refuse one both would
// govern, at the instance that holds it; --bgp-vips keeps BGP off it. A
// GoBGP file is read as gobgpd reads it: a misspelt key is an error.
func TestBGPAndVRRPOwnAVIPOnce(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	require.NoError(t, os.WriteFile(conf, []byte(`vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {
        10.77.1.100/32
    }
}
virtual_server 10.77.1.100 80 {
    lvs_sched mh
    lb_kind DR
    protocol TCP
    real_server 10.77.0.11 80 {
    }
}
virtual_server 10.77.2.100 80 {
    lvs_sched mh
    lb_kind DR
    protocol TCP
    real_server 10.77.0.11 80 {
    }
}
`), 0o644))
	bgp := filepath.Join(dir, "gobgp.toml")
	require.NoError(t, os.WriteFile(bgp, []byte("[global.config]\n  as = 65001\n  router-id = \"10.77.0.2\"\n  port = -1\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"10.77.0.254\"\n    peer-as = 65000\n"), 0o644))

	_, err := ReadConfig(conf, ReadOptions{})
	require.NoError(t, err, "VRRP alone")
	_, err = ReadConfig(conf, ReadOptions{BGPConfig: bgp})
	require.Error(t, err)
	assert.Equal(t, conf+`:1: vrrp_instance VI_1 holds a VIP the BGP speaker announces too (--bgp-config): a VIP is VRRP's or BGP's; take it out of the instance, or out of --bgp-vips "10.77.1.100"`, err.Error())
	_, err = ReadConfig(conf, ReadOptions{BGPConfig: bgp, BGPVIPs: []netip.Prefix{netip.MustParsePrefix("10.77.2.0/24")}})
	require.NoError(t, err, "BGP takes only 10.77.2.100")

	require.NoError(t, os.WriteFile(bgp, []byte("[global.config]\n  as = 65001\n[[neighbors]]\n  [neighbors.timers.config]\n    hold_time = 3\n"), 0o644))
	_, err = ReadConfig(conf, ReadOptions{BGPConfig: bgp, BGPVIPs: []netip.Prefix{netip.MustParsePrefix("10.77.2.0/24")}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--bgp-config "+bgp)
	assert.Contains(t, err.Error(), "hold_time")
}
