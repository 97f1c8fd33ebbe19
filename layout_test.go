// The rules of xlb's package layout (docs/DESIGN.md, "Packages"), checked
// against what the packages import (go list -deps, test files aside).
package xlb_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const mod = "github.com/xlbproject/xlb/"

func TestLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{join .Deps \" \"}}", "./...").Output()
	require.NoError(t, err, "go list")
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, d, _ := strings.Cut(line, "\t")
		deps[strings.TrimPrefix(pkg, mod)] = strings.Fields(d)
	}
	require.Contains(t, deps, "pkg/daemon")
	uses := func(pkg string, of ...string) []string {
		var found []string
		for _, o := range of {
			if slices.Contains(deps[pkg], mod+o) {
				found = append(found, o)
			}
		}
		return found
	}
	impls := []string{"pkg/dataplane/xdp", "pkg/dataplane/ipvs"}
	owners := []string{"pkg/vrrp", "pkg/vrrpd", "pkg/bgpd"}

	// What feeds the director (configuration, health) and what owns VIPs
	// never reaches into a data plane implementation; configuration,
	// health, VRRP and the scheduler math not even into the interface.
	for _, pkg := range []string{"pkg/director", "pkg/health", "pkg/config", "pkg/vrrp", "pkg/vrrpd", "pkg/bgpd", "pkg/sched", "pkg/lvs", "pkg/scripts"} {
		require.Contains(t, deps, pkg)
		require.Empty(t, uses(pkg, impls...), "%s imports a data plane implementation", pkg)
	}
	for _, pkg := range []string{"pkg/health", "pkg/config", "pkg/vrrp", "pkg/vrrpd", "pkg/bgpd", "pkg/sched", "pkg/lvs"} {
		require.Empty(t, uses(pkg, "pkg/dataplane"), "%s imports the data plane", pkg)
	}
	// The director knows nothing of who owns VIPs.
	require.Empty(t, uses("pkg/director", owners...), "the director imports a VIP owner")
	// Only the composition (and the commands over it) joins a VIP owner
	// to the director.
	for pkg := range deps {
		if pkg == "pkg/daemon" || strings.HasPrefix(pkg, "cmd/") {
			continue
		}
		if len(uses(pkg, owners...)) > 0 && len(uses(pkg, "pkg/director")) > 0 {
			t.Errorf("%s imports both a VIP owner and the director: only pkg/daemon and cmd/ may", pkg)
		}
	}
	// Nothing imports the composition or the commands from below.
	for pkg := range deps {
		if strings.HasPrefix(pkg, "cmd/") {
			continue
		}
		require.Empty(t, uses(pkg, "pkg/daemon", "cmd/xlb", "cmd/xlbadm"), "%s imports the daemon or a command", pkg)
	}
}
