package ipvs

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/director"
	"github.com/xlbproject/xlb/pkg/ipvsadm"
)

// compareIpvsadm runs the real ipvsadm in e's namespace and checks that
// pkg/ipvsadm prints the same from the data plane's view. Expiry times
// tick while the two are read, so a mismatch is retried.
func compareIpvsadm(t *testing.T, e *env, v *Dataplane, services []dataplane.Service, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("ipvsadm")
	// tools/deps.sh installs it on the host and copies it into the test VM.
	require.NoError(t, err, "the real ipvsadm is what xlbadm's listings are compared with (apt-get install ipvsadm)")
	cmd, err := ipvsadm.Parse(args)
	require.NoError(t, err)
	for attempt := 1; ; attempt++ {
		kernel := e.ns.run(t, append([]string{bin}, args...)...)
		var ours strings.Builder
		st, _, err := director.IpvsadmTable(v, services, nil, true)
		require.NoError(t, err)
		require.NoError(t, st.Exec(&ours, cmd))
		if kernel == ours.String() || attempt == 3 {
			assert.Equal(t, kernel, ours.String(), "ipvsadm %s", strings.Join(args, " "))
			return
		}
	}
}

// TestIpvsadmListing: the real ipvsadm lists what xlb made, and lists it
// as xlbadm would.
func TestIpvsadmListing(t *testing.T) {
	e := kernelEnv(t)
	v, _ := e.open(t, Options{})
	svcs := sample()
	require.NoError(t, v.Apply(svcs))
	compareIpvsadm(t, e, v, svcs, "-Ln")
	compareIpvsadm(t, e, v, svcs, "-Ln", "--stats")
	compareIpvsadm(t, e, v, svcs, "-S", "-n")
	require.NoError(t, v.SetTimeouts(dataplane.Timeouts{TCP: 100 * time.Second}))
	compareIpvsadm(t, e, v, svcs, "-L", "--timeout")
}
