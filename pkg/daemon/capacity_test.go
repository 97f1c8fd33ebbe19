package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

// A reload past the data plane's capacity is refused before anything
// changes, whether its numbers say so (services) or only the data plane
// can tell (its scheduler tables' pool); the running configuration stays,
// and afterwards a real's failure still takes it out of the data plane.
// (Before, such a reload was logged as reloaded and froze the data plane:
// a dead real kept getting new connections.)
func TestReloadOverCapacity(t *testing.T) {
	topo := testutil.NewDRServing(t)
	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	conf := func(extra ...string) string {
		c := fmt.Sprintf(drConfig, realBlock("10.77.0.11", 1)+realBlock("10.77.0.12", 1))
		c = strings.Replace(c, "lb_algo wrr", "lb_algo sh", 1)
		for i, sched := range extra {
			c += fmt.Sprintf("virtual_server 10.77.1.100 %d {\n    lb_algo %s\n    lb_kind DR\n    protocol TCP\n    real_server 10.77.0.11 %d { weight 1 }\n}\n", 81+i, sched, 81+i)
		}
		return c
	}
	require.NoError(t, os.WriteFile(cfgPath, []byte(conf()), 0o644))
	// Two services; 600 table entries: one sh service's 256 buckets and
	// room to rebuild them fit, two sh-sized tables and that room do not.
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath, MaxServices: 2, MaxSchedEntries: 600})
	d.waitReals(t, map[string]bool{"10.77.0.11": true, "10.77.0.12": true})
	require.Eventually(t, func() bool { return d.vrrpState(t) == "MASTER" }, 10*time.Second, 20*time.Millisecond)

	reload := func(body, want string) {
		t.Helper()
		refusals := strings.Count(d.logs(), "reload refused")
		require.NoError(t, os.WriteFile(cfgPath, []byte(body), 0o644))
		require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
		require.Eventually(t, func() bool { return strings.Count(d.logs(), "reload refused") > refusals }, 5*time.Second, 20*time.Millisecond)
		assert.Contains(t, d.logs(), want)
		st := d.status(t)
		assert.Len(t, st.Services, 1, "the running configuration stays")
		assert.Empty(t, st.LastError, "the data plane is as the running configuration says")
	}
	reload(conf("rr", "rr"), "keepalived.conf:53: the configuration has more than 2 virtual servers; the XDP data plane holds 2 (--max-services); stopped reading at")
	reload(conf("dh"), "the scheduler tables take 512 entries, and rebuilding this one's 256 beside it needs a free run that long; the data plane's pool has 600 (--max-sched-entries)")
	assert.NotContains(t, d.logs(), "msg=reloaded")

	// r1 dies: its check takes it out, and the data plane follows.
	require.NoError(t, topo.StopHTTP(0))
	d.waitReals(t, map[string]bool{"10.77.0.11": false, "10.77.0.12": true})
	assert.Equal(t, map[string]int{"r2": 6}, count(getN(t, topo, 6)), "the dead real gets no connection")
}
