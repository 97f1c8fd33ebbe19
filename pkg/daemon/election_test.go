package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/election"
)

// electionConf is one director of the pair: a vrrp_script that fails once
// the file fail exists, tracked with weight by the instance.
func electionConf(prio, weight int, fail string) string {
	return fmt.Sprintf(`vrrp_script chk {
    script "/bin/sh -c '! test -e %s'"
    interval 1
    weight %d
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    track_script {
        chk
    }
    virtual_ipaddress {
        10.77.1.100/32
    }
}
`, fail, weight, prio)
}

// xlb check --peer's verdicts against what the pair does with xlb as one
// director and keepalived 2.2.7 as the other: xlb at 150 tracking a script
// of weight w, keepalived at 120. The check says whether the VIP moves
// when xlb's script fails (|w| larger than the gap of 30) or stays on the
// failed xlb (the classic mistake); the test makes the script fail and
// looks where the VIP is.
func TestElectionCheckAgainstXLBAndKeepalived(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tc := range []struct {
		weight int
		moves  bool
	}{{-60, true}, {-20, false}} {
		t.Run(fmt.Sprintf("weight %d", tc.weight), func(t *testing.T) {
			topo, err := testutil.NewDR(testutil.DROptions{Reals: 1, Backup: true})
			require.NoError(t, err)
			t.Cleanup(func() { topo.Close() })
			dir := t.TempDir()
			fail := filepath.Join(dir, "fail")
			a, b := filepath.Join(dir, "xlb.conf"), filepath.Join(dir, "keepalived.conf")
			require.NoError(t, os.WriteFile(a, []byte(electionConf(150, tc.weight, fail)), 0o644))
			require.NoError(t, os.WriteFile(b, []byte(electionConf(120, tc.weight, filepath.Join(dir, "never"))), 0o644))

			// The check's verdict, from the two files.
			var ds []election.Director
			for _, f := range []string{a, b} {
				cfg, err := config.Parse(f)
				require.NoError(t, err)
				ds = append(ds, election.Director{Name: f, Config: cfg})
			}
			rep := election.Check(ds)
			stays := false
			for _, f := range rep.Findings {
				stays = stays || f.Kind == election.KindStaysMaster
			}
			require.Equal(t, !tc.moves, stays, "the check's verdict: %v", rep.Findings)
			assert.Equal(t, stays, rep.Failed(), "the classic mistake fails the check")

			// The pair.
			x := startDaemon(t, topo.Director, Options{ConfigFile: a})
			k := testutil.StartKeepalived(t, topo.Backup, dir, "b", b)
			require.Eventually(t, func() bool { return x.vrrpState(t) == "MASTER" }, 10*time.Second, 50*time.Millisecond)
			require.Eventually(t, func() bool { return strings.Contains(k.Log.String(), "Entering BACKUP STATE") }, 10*time.Second, 50*time.Millisecond)

			require.NoError(t, os.WriteFile(fail, nil, 0o644))
			if tc.moves {
				require.Eventually(t, func() bool { return x.vrrpState(t) == "BACKUP" && holdsVIP(t, topo.Backup) },
					10*time.Second, 50*time.Millisecond, "keepalived takes the VIP from the failed xlb, as the check said")
				assert.False(t, holdsVIP(t, topo.Director))
			} else {
				require.Eventually(t, func() bool {
					for _, i := range x.status(t).VRRP {
						if int(i.Priority) == 150+tc.weight {
							return true
						}
					}
					return false
				}, 5*time.Second, 50*time.Millisecond, "xlb's priority drops to %d", 150+tc.weight)
				// A BACKUP at 120 takes over only from a lower priority:
				// past its master-down interval, xlb still holds the VIP.
				time.Sleep(5 * time.Second)
				assert.Equal(t, "MASTER", x.vrrpState(t), "the failed xlb stays MASTER, as the check said")
				assert.True(t, holdsVIP(t, topo.Director))
				assert.False(t, holdsVIP(t, topo.Backup))
			}
		})
	}
}
