package ipvs

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/ipvsadm"
)

// The kernel's sync daemons driven over generic netlink, checked against
// the real ipvsadm: what xlb starts, ipvsadm -L --daemon lists; what
// ipvsadm starts, xlb reads back; and xlbadm's listing of them is
// ipvsadm's, byte for byte.
func TestSyncDaemonsAreTheKernels(t *testing.T) {
	requireIPVS(t)
	ns := newTestNS(t)
	dummy := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "sync0"}}
	require.NoError(t, ns.nl.LinkAdd(dummy))
	link, err := ns.nl.LinkByName("sync0")
	require.NoError(t, err)
	require.NoError(t, ns.nl.AddrAdd(link, &netlink.Addr{IPNet: netlink.NewIPNet(netip.MustParseAddr("10.99.0.1").AsSlice())}))
	require.NoError(t, ns.nl.LinkSetMulticastOn(link))
	require.NoError(t, ns.nl.LinkSetUp(link))
	v, _ := envIn(t, ns).open(t, Options{})

	listing := func(ds []dataplane.SyncDaemon) string {
		var b strings.Builder
		var out []ipvsadm.Daemon
		for _, d := range ds {
			out = append(out, ipvsadm.Daemon{Backup: d.Backup, McastIfn: d.Interface, SyncID: d.SyncID,
				SyncMaxlen: d.MaxLen, McastGroup: d.Group, McastPort: d.Port, McastTTL: d.TTL})
		}
		require.NoError(t, ipvsadm.WriteDaemons(&b, out))
		return b.String()
	}

	master := dataplane.SyncDaemon{Interface: "sync0", SyncID: 7, MaxLen: 1400, Group: netip.MustParseAddr("224.0.0.99"), Port: 8850, TTL: 2}
	require.NoError(t, v.StartDaemon(master))
	got, err := v.Daemons()
	require.NoError(t, err)
	assert.Equal(t, []dataplane.SyncDaemon{master}, got)
	real := ns.run(t, "ipvsadm", "-L", "--daemon")
	assert.Equal(t, real, listing(got), "xlbadm -L --daemon is ipvsadm's")
	t.Logf("ipvsadm -L --daemon:\n%s", real)

	ns.run(t, "ipvsadm", "--start-daemon", "backup", "--mcast-interface", "sync0", "--syncid", "7")
	got, err = v.Daemons()
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, master, got[0], "the master first")
	assert.True(t, got[1].Backup)
	assert.Equal(t, netip.MustParseAddr("224.0.0.81"), got[1].Group, "the kernel's defaults, as it reports them")
	assert.EqualValues(t, 8848, got[1].Port)
	real = ns.run(t, "ipvsadm", "-L", "--daemon")
	assert.Equal(t, real, listing(got))
	t.Logf("ipvsadm -L --daemon:\n%s", real)

	err = v.StartDaemon(master)
	require.Error(t, err, "one master per namespace")
	assert.Contains(t, err.Error(), "file exists")

	require.NoError(t, v.StopDaemon(false))
	require.NoError(t, v.StopDaemon(true))
	got, err = v.Daemons()
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Empty(t, ns.run(t, "ipvsadm", "-L", "--daemon"))
}
