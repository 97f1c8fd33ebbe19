package daemon

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/dataplane"
)

// fakeDaemons runs daemons in name only; a backup on "bad0" will not start.
type fakeDaemons struct{ running []dataplane.SyncDaemon }

func (f *fakeDaemons) StartDaemon(d dataplane.SyncDaemon) error {
	if d.Backup && d.Interface == "bad0" {
		return errors.New("no such device")
	}
	f.running = append(f.running, d)
	return nil
}

func (f *fakeDaemons) StopDaemon(backup bool) error {
	for i, d := range f.running {
		if d.Backup == backup {
			f.running = append(f.running[:i], f.running[i+1:]...)
			return nil
		}
	}
	return errors.New("none running")
}

func (f *fakeDaemons) Daemons() ([]dataplane.SyncDaemon, error) { return f.running, nil }

// lvs_sync_daemon is all or nothing: a backup that cannot start leaves no
// master running, and the daemons before it run again; the same file
// again changes nothing.
func TestLVSSyncDaemonAllOrNothing(t *testing.T) {
	f := &fakeDaemons{}
	s := &syncState{log: slog.New(slog.NewTextHandler(io.Discard, nil)), sd: f}
	require.Error(t, s.apply(&config.LVSSyncDaemon{Interface: "bad0", SyncID: 5}))
	assert.Empty(t, f.running, "a master left running by a file refused at start")
	good := &config.LVSSyncDaemon{Interface: "eth0", SyncID: 5}
	require.NoError(t, s.apply(good))
	assert.Len(t, f.running, 2)
	require.Error(t, s.apply(&config.LVSSyncDaemon{Interface: "bad0", SyncID: 5}))
	assert.ElementsMatch(t, daemonsOf(good), f.running, "the previous daemons run, no master of the refused file")
	require.NoError(t, s.apply(&config.LVSSyncDaemon{Interface: "eth0", SyncID: 5}))
	assert.ElementsMatch(t, daemonsOf(good), f.running)
	require.NoError(t, s.apply(nil))
	assert.Empty(t, f.running)
}
