package syncd

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/ipvssync"
)

// The bulk-dump request and its end marker are messages a kernel backup
// accepts and installs nothing from (a version 1 header announcing no
// records, the tag after it), and only they carry a tag.
func TestExtensionsAreEmptyIPVSMessages(t *testing.T) {
	for _, tag := range [][]byte{tagDumpRequest, tagDumpDone} {
		b := extension(7, tag)
		var m ipvssync.Message
		require.NoError(t, m.UnmarshalBinary(b), "the kernel's acceptance rules")
		assert.Equal(t, ipvssync.Version1, m.Version)
		assert.EqualValues(t, 7, m.SyncID)
		assert.Empty(t, m.Conns)
		assert.Empty(t, m.Dropped)
		assert.True(t, bytes.Equal(tag, extensionTag(b)))
	}
	// An ordinary message has no tag, nor does a header of another size.
	msg := &ipvssync.Message{SyncID: 7, Version: ipvssync.Version1, Conns: []ipvssync.Conn{{Protocol: 6, State: ipvssync.TCPEstablished,
		Client: netip.MustParseAddrPort("192.0.2.7:40000"), Virtual: netip.MustParseAddrPort("10.0.0.100:80"),
		Dest: netip.MustParseAddrPort("10.0.0.11:80"), Flags: ipvssync.DRoute, Timeout: 900 * time.Second}}}
	b, err := msg.MarshalBinary()
	require.NoError(t, err)
	assert.Nil(t, extensionTag(b))
	assert.Nil(t, extensionTag(extension(7, []byte("short"))))
}

// The defaults a daemon is listed with are the kernel's: group
// 224.0.0.81, port 8848, TTL 1, the master's 1472 bytes whatever the MTU,
// the backup's from the MTU (at least 1500) less the IPv4 and UDP headers.
func TestDaemonDefaultsAreTheKernels(t *testing.T) {
	m := withDefaults(dataplane.SyncDaemon{Interface: "eth0"}, 9000)
	assert.Equal(t, dataplane.SyncDaemon{Interface: "eth0", Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1, MaxLen: 1472}, m)
	assert.EqualValues(t, 8972, withDefaults(dataplane.SyncDaemon{Backup: true}, 9000).MaxLen)
	assert.EqualValues(t, 1472, withDefaults(dataplane.SyncDaemon{Backup: true}, 1400).MaxLen)
	given := dataplane.SyncDaemon{MaxLen: 1000, Group: netip.MustParseAddr("239.1.2.3"), Port: 9000, TTL: 3}
	assert.Equal(t, given, withDefaults(given, 1500))
}

// A busy flow is sent again after an eighth of its timeout, never more
// often than RefreshFloor.
func TestRefreshAfter(t *testing.T) {
	assert.Equal(t, 112500*time.Millisecond, refreshAfter(&ipvssync.Conn{Timeout: 900 * time.Second}))
	assert.Equal(t, RefreshFloor, refreshAfter(&ipvssync.Conn{Timeout: 10 * time.Second}))
}
