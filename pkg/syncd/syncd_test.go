package syncd

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

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

// records is a Table of fixed records.
type records []ipvssync.Conn

func (r records) SyncRecords(each func(Record)) error {
	for _, c := range r {
		each(Record{Conn: c})
	}
	return nil
}

func (r records) SyncInstall([]ipvssync.Conn) (Installed, error) { return Installed{}, nil }

// A record no message can carry (here: of mixed families) is left out of
// the master's pass and counted; every other record of the pass is sent.
// Before, ipvssync.Batch refused the whole slice: one such flow stopped
// the sync of all.
func TestMasterLeavesOutWhatNoMessageCarries(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	good := ipvssync.Conn{Protocol: 6, State: ipvssync.TCPEstablished, Flags: ipvssync.DRoute, Timeout: 900 * time.Second,
		Client: netip.MustParseAddrPort("192.0.2.7:40000"), Virtual: netip.MustParseAddrPort("10.0.0.100:80"),
		Dest: netip.MustParseAddrPort("10.0.0.11:80")}
	mixed := good
	mixed.Client, mixed.Dest = netip.MustParseAddrPort("192.0.2.8:40000"), netip.MustParseAddrPort("[2001:db8::11]:80")
	require.Error(t, mixed.Check())
	var logged bytes.Buffer
	d := &daemon{cfg: dataplane.SyncDaemon{SyncID: 5, MaxLen: 1472}, table: records{mixed, good}, log: slog.New(slog.NewTextHandler(&logged, nil)), send: fds[0]}
	m := &master{daemon: d, sent: map[recKey]*sentAs{}}
	require.NoError(t, m.passOnce(false))
	buf := make([]byte, 65536)
	n, err := unix.Read(fds[1], buf)
	require.NoError(t, err)
	var msg ipvssync.Message
	require.NoError(t, msg.UnmarshalBinary(buf[:n]))
	assert.Equal(t, []ipvssync.Conn{good}, msg.Conns)
	st := d.snapshot()
	assert.EqualValues(t, 1, st.Unsendable)
	assert.EqualValues(t, 1, st.SentRecords)
	// The next pass counts it again (nothing changed for the good one:
	// nothing sent) but does not log it again within the minute.
	require.NoError(t, m.passOnce(false))
	assert.EqualValues(t, 2, d.snapshot().Unsendable)
	assert.Equal(t, 1, strings.Count(logged.String(), "no message can carry"), "%s", logged.String())
}
