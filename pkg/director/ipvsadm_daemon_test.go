package director

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/xlbproject/xlb/pkg/dataplane"
)

// syncingDataplane is the fake data plane with sync daemons, as the IPVS
// data plane has them.
type syncingDataplane struct {
	*fakeDataplane
	daemons []dataplane.SyncDaemon
}

func (s *syncingDataplane) StartDaemon(d dataplane.SyncDaemon) error {
	s.daemons = append(s.daemons, d)
	return nil
}

func (s *syncingDataplane) StopDaemon(backup bool) error {
	var keep []dataplane.SyncDaemon
	for _, d := range s.daemons {
		if d.Backup != backup {
			keep = append(keep, d)
		}
	}
	s.daemons = keep
	return nil
}

func (s *syncingDataplane) Daemons() ([]dataplane.SyncDaemon, error) { return s.daemons, nil }

// xlbadm --start-daemon goes to a data plane that runs sync daemons with
// ipvsadm's options, and -L --daemon lists them as ipvsadm does; a data
// plane without them refuses by name and lists nothing.
func TestXlbadmSyncDaemon(t *testing.T) {
	d, _, _, _ := newTest(t)
	out, msg, code := d.Ipvsadm([]string{"--start-daemon", "master", "--mcast-interface", "eth1", "--syncid", "9"}, "")
	assert.Equal(t, 255, code)
	assert.Empty(t, out)
	assert.Contains(t, msg, "Operation not supported: the XDP data plane has no connection sync daemon")
	out, _, code = d.Ipvsadm([]string{"-L", "--daemon"}, "")
	assert.Zero(t, code)
	assert.Empty(t, out)

	sd := &syncingDataplane{fakeDataplane: &fakeDataplane{}}
	d = New(context.Background(), Options{Dataplane: sd})
	_, msg, code = d.Ipvsadm([]string{"--start-daemon", "master", "--mcast-interface", "eth1", "--syncid", "9", "--sync-maxlen", "1400",
		"--mcast-group", "224.0.0.99", "--mcast-port", "8850", "--mcast-ttl", "2"}, "")
	assert.Zero(t, code, msg)
	assert.Equal(t, []dataplane.SyncDaemon{{Interface: "eth1", SyncID: 9, MaxLen: 1400, Group: netip.MustParseAddr("224.0.0.99"), Port: 8850, TTL: 2}}, sd.daemons)
	sd.daemons = append(sd.daemons, dataplane.SyncDaemon{Backup: true, Interface: "eth1", SyncID: 9, MaxLen: 1472, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1})
	out, _, code = d.Ipvsadm([]string{"-L", "--daemon"}, "")
	assert.Zero(t, code)
	assert.Equal(t, "master sync daemon (mcast=eth1, syncid=9, maxlen=1400, group=224.0.0.99, port=8850, ttl=2)\n"+
		"backup sync daemon (mcast=eth1, syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n", out)
	_, _, code = d.Ipvsadm([]string{"--stop-daemon", "backup"}, "")
	assert.Zero(t, code)
	assert.Len(t, sd.daemons, 1)
}
