package daemon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

// The attack: a vrrp_script anyone can write, which the director runs as
// root. With enable_script_security the director refuses it in
// keepalived's words and nobody's rewrite never runs; with script_user
// nobody it runs, as nobody. A reload that changes script_user is obeyed.
func TestScriptSecurityAgainstUnprivilegedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 1})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	dir := t.TempDir()
	// nobody must reach the script: both levels of the test's directory.
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	script := filepath.Join(dir, "chk.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\ntrue\n"), 0o777))
	require.NoError(t, os.Chmod(script, 0o777))
	out := filepath.Join(dir, "out")
	require.NoError(t, os.WriteFile(out, nil, 0o666))
	require.NoError(t, os.Chmod(out, 0o666))
	cfgPath := filepath.Join(dir, "keepalived.conf")
	write := func(global string) {
		require.NoError(t, os.WriteFile(cfgPath, fmt.Appendf(nil, `
global_defs {
    %s
}
vrrp_script chk {
    script "%s"
    interval 1
    weight -10
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 54
    priority 100
    virtual_ipaddress {
        10.77.1.100/32
    }
    track_script {
        chk
    }
}
`, global, script), 0o644))
	}
	write("enable_script_security\n    script_user root")

	// xlb check reads it as xlb run does (ReadConfig).
	cfg, err := ReadConfig(cfgPath, ReadOptions{})
	require.NoError(t, err)
	var ws []string
	for _, w := range cfg.Warnings {
		ws = append(ws, w.String())
	}
	assert.Contains(t, ws, fmt.Sprintf("%s:6: Unsafe permissions found for script '%s' - disabling.", cfgPath, script))
	assert.Contains(t, ws, fmt.Sprintf("%s:6: Disabling track script chk due to insecure", cfgPath))

	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath})
	assert.Contains(t, d.logs(), "Disabling track script chk due to insecure")
	// The attacker appends a line; the tracker would run it every second.
	attack := exec.Command("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
		"sh", "-c", fmt.Sprintf("echo 'id -u >> %s' >> %s", out, script))
	b, err := attack.CombinedOutput()
	require.NoError(t, err, "%s", b)
	time.Sleep(2500 * time.Millisecond)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Empty(t, string(got), "the rewritten script ran")

	// script_user nobody, by SIGHUP: the script runs, as nobody.
	write("script_user nobody")
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		got, _ := os.ReadFile(out)
		return len(got) > 0
	}, 10*time.Second, 100*time.Millisecond, "the tracker never ran the script as nobody: %s", d.logs())
	got, err = os.ReadFile(out)
	require.NoError(t, err)
	for _, uid := range strings.Fields(string(got)) {
		assert.Equal(t, "65534", uid)
	}
}
