package vrrpd

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/pkg/vrrp"
)

// A reload restarts the VRRP instances when anything they run from
// changed (a sync group's notify script, a vrrp_script's interval), and
// not when blocks only moved in the file.
func TestVRRPReloadSeesGroupsAndScripts(t *testing.T) {
	script := `
vrrp_script chk {
    script "/bin/true"
    interval 2
}
`
	conf := script + syncGroupConf + syncInstances
	same := func(a, b string) bool {
		return reflect.DeepEqual(vrrpViewOf(parse(t, a)), vrrpViewOf(parse(t, b)))
	}
	assert.True(t, same(conf, conf))
	assert.True(t, same(conf, "\n\n"+syncInstances+syncGroupConf+script), "only positions differ")
	assert.False(t, same(conf, script+strings.Replace(syncGroupConf, `notify_backup "/bin/true"`, `notify_backup "/bin/false"`, 1)+syncInstances),
		"the sync group's notify_backup changed")
	assert.False(t, same(conf, strings.Replace(script, "interval 2", "interval 3", 1)+syncGroupConf+syncInstances),
		"the vrrp_script's interval changed")
}

// A reload carries a vrrp_script's result over only when the script is
// defined alike: a changed one starts again from "not run yet".
func TestReloadCarriesUnchangedScripts(t *testing.T) {
	script := `
vrrp_script same {
    script "/bin/true"
}
vrrp_script edited {
    script "/bin/true"
    interval 2
}
`
	v := &Supervisor{tracks: map[string]*trackState{
		scriptKey("same"):   {status: vrrp.TrackFailed, fails: 3},
		scriptKey("edited"): {status: vrrp.TrackFailed, fails: 3},
	}}
	old := vrrpViewOf(parse(t, script)).scripts
	now := vrrpViewOf(parse(t, "\n"+strings.Replace(script, "interval 2", "interval 3", 1))).scripts
	assert.Equal(t, map[string]trackState{"same": {status: vrrp.TrackFailed, fails: 3}}, v.unchangedScripts(old, now))
}

// A tracked interface that cannot be read because the process is out of
// descriptors is not taken for down (that put a director in FAULT when its
// control socket was flooded): linkStatus says it cannot tell.
func TestLinkStatusOutOfDescriptors(t *testing.T) {
	st, err := linkStatus("lo")
	require.NoError(t, err)
	assert.Equal(t, vrrp.TrackOK, st)
	st, err = linkStatus("xlb-nosuch0")
	require.NoError(t, err)
	assert.Equal(t, vrrp.TrackFailed, st, "a missing interface has failed")

	var lim unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &lim))
	low := lim
	low.Cur = 3 // stdin, stdout and stderr hold 0-2: no descriptor left
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &low))
	_, err = linkStatus("lo")
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &lim))
	assert.ErrorIs(t, err, unix.EMFILE)
}
