package scripts

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/config"
)

const nobody = 65534

// secureConf is a configuration with one vrrp_script (tracked by VI_1),
// a notify_master and a MISC_CHECK, all running script.
func secureConf(t *testing.T, global, script string) *config.Config {
	t.Helper()
	cfg, err := config.ParseBytes("keepalived.conf", fmt.Appendf(nil, `global_defs {
%s
}
vrrp_script chk {
    script "%[2]s"
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        10.0.0.1
    }
    track_script {
        chk
    }
    notify_master "%[2]s master"
}
virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_algo rr
    lb_kind DR
    real_server 10.0.0.2 80 {
        MISC_CHECK {
            misc_path "%[2]s check"
        }
    }
}
`, global, script))
	require.NoError(t, err)
	return cfg
}

func writeScript(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), mode))
	require.NoError(t, os.Chmod(path, mode)) // past the umask
}

func warnings(cfg *config.Config) string {
	var b strings.Builder
	for _, w := range cfg.Warnings {
		b.WriteString(w.String() + "\n")
	}
	return b.String()
}

// kept says which of the three scripts survived Secure.
func kept(cfg *config.Config) (track, notify, misc bool) {
	track = len(cfg.Scripts) == 1 && len(cfg.Instances[0].TrackScripts) == 1
	notify = cfg.Instances[0].NotifyMaster != nil
	misc = len(cfg.VirtualServers[0].Reals[0].Checkers) == 1
	return
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the checks are about files root does not own")
	}
}

// The insecure layouts keepalived 2.2.7's check_security finds, each with
// enable_script_security (every script removed, keepalived's messages)
// and without (kept, reported, SECURITY VIOLATION).
func TestSecureInsecureLayouts(t *testing.T) {
	needRoot(t)
	cases := map[string]func(t *testing.T, dir string) string{
		"world-writable script": func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "chk.sh")
			writeScript(t, p, 0o777)
			return p
		},
		"script owned by nobody": func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "chk.sh")
			writeScript(t, p, 0o755)
			require.NoError(t, os.Chown(p, nobody, nobody))
			return p
		},
		"directory owned by nobody": func(t *testing.T, dir string) string {
			sub := filepath.Join(dir, "sub")
			require.NoError(t, os.Mkdir(sub, 0o755))
			p := filepath.Join(sub, "chk.sh")
			writeScript(t, p, 0o755)
			require.NoError(t, os.Chown(sub, nobody, nobody))
			return p
		},
		"group-writable directory, group not root": func(t *testing.T, dir string) string {
			sub := filepath.Join(dir, "sub")
			require.NoError(t, os.Mkdir(sub, 0o775))
			require.NoError(t, os.Chmod(sub, 0o775))
			require.NoError(t, os.Chown(sub, 0, nobody))
			p := filepath.Join(sub, "chk.sh")
			writeScript(t, p, 0o755)
			return p
		},
		"symlink to a script in a directory nobody owns": func(t *testing.T, dir string) string {
			sub := filepath.Join(dir, "sub")
			require.NoError(t, os.Mkdir(sub, 0o755))
			target := filepath.Join(sub, "chk.sh")
			writeScript(t, target, 0o755)
			require.NoError(t, os.Chown(sub, nobody, nobody))
			link := filepath.Join(dir, "chk.sh")
			require.NoError(t, os.Symlink(target, link))
			return link
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			script := mk(t, t.TempDir())
			real, err := filepath.EvalSymlinks(script)
			require.NoError(t, err)

			cfg := secureConf(t, "enable_script_security\nscript_user root", script)
			require.NoError(t, Secure(cfg, false))
			w := warnings(cfg)
			assert.Contains(t, w, fmt.Sprintf("Unsafe permissions found for script '%s' - disabling.", real))
			assert.Contains(t, w, "Disabling track script chk due to insecure")
			assert.Contains(t, w, fmt.Sprintf("Disabling misc script '%s' 'check' due to insecure", script))
			track, notify, misc := kept(cfg)
			assert.False(t, track, "vrrp_script kept")
			assert.False(t, notify, "notify_master kept")
			assert.False(t, misc, "MISC_CHECK kept")
			assert.NotContains(t, w, "SECURITY VIOLATION")

			cfg = secureConf(t, "script_user root", script)
			require.NoError(t, Secure(cfg, false))
			w = warnings(cfg)
			assert.Contains(t, w, fmt.Sprintf("Unsafe permissions found for script '%s'.", real))
			assert.Contains(t, w, "SECURITY VIOLATION - scripts are being executed but script_security not enabled. There are insecure scripts.")
			assert.Contains(t, w, "SECURITY VIOLATION - check scripts are being executed but script_security not enabled. There are insecure scripts.")
			track, notify, misc = kept(cfg)
			assert.True(t, track && notify && misc, "keepalived runs insecure scripts without enable_script_security")
		})
	}
}

// Layouts that pass: a root-owned script under root-owned directories, and
// under a world-writable directory with the sticky bit (as /tmp). A script
// run as an unprivileged user is not checked at all, as in keepalived.
func TestSecureLayoutsThatPass(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "chk.sh")
	writeScript(t, script, 0o755)
	cfg := secureConf(t, "enable_script_security\nscript_user root", script)
	require.NoError(t, Secure(cfg, false))
	assert.Empty(t, warnings(cfg))
	track, notify, misc := kept(cfg)
	assert.True(t, track && notify && misc)
	assert.Equal(t, "root", cfg.Scripts[0].Script.User, "the default user is written into each script")

	sticky := filepath.Join(dir, "sticky")
	require.NoError(t, os.Mkdir(sticky, 0o777))
	require.NoError(t, os.Chmod(sticky, 0o777|os.ModeSticky))
	script = filepath.Join(sticky, "chk.sh")
	writeScript(t, script, 0o755)
	cfg = secureConf(t, "enable_script_security\nscript_user root", script)
	require.NoError(t, Secure(cfg, false))
	assert.Empty(t, warnings(cfg))

	writeScript(t, script, 0o777)
	cfg = secureConf(t, "enable_script_security\nscript_user nobody", script)
	require.NoError(t, Secure(cfg, false))
	assert.Empty(t, warnings(cfg), "a script run as nobody cannot give root away")
	track, notify, misc = kept(cfg)
	assert.True(t, track && notify && misc)
	assert.Equal(t, "nobody", cfg.Instances[0].NotifyMaster.User)
}

// Not found, not executable, found by PATH; a missing user is an error.
func TestSecureFindsAndResolves(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()

	cfg := secureConf(t, "script_user root", filepath.Join(dir, "missing.sh"))
	require.NoError(t, Secure(cfg, false))
	w := warnings(cfg)
	assert.Contains(t, w, fmt.Sprintf("Script %s cannot be accessed - No such file or directory", filepath.Join(dir, "missing.sh")))
	assert.Contains(t, w, "Disabling track script chk since not found/accessible")
	track, notify, misc := kept(cfg)
	assert.False(t, track || notify || misc)
	assert.NotContains(t, w, "SECURITY VIOLATION", "no script was found")

	noexec := filepath.Join(dir, "noexec.sh")
	writeScript(t, noexec, 0o644)
	cfg = secureConf(t, "script_user nobody", noexec)
	require.NoError(t, Secure(cfg, false))
	assert.Contains(t, warnings(cfg), fmt.Sprintf("WARNING - script '%s' is not executable for uid:gid %d:%d - disabling.", noexec, nobody, nobody))
	track, notify, misc = kept(cfg)
	assert.False(t, track || notify || misc)

	t.Setenv("PATH", "/usr/bin:/bin")
	full, err := exec.LookPath("true") // /usr/bin/true; busybox's /bin/true in the VM
	require.NoError(t, err)
	cfg = secureConf(t, "enable_script_security\nscript_user root", "true")
	require.NoError(t, Secure(cfg, false))
	assert.Contains(t, warnings(cfg), "WARNING - script `true` resolved by path search to `"+full+"`. Please specify full path.")
	assert.Equal(t, []string{full}, cfg.Scripts[0].Script.Args)

	// keepalived: a configuration error, and it runs on without the
	// scripts; xlb warns the same (an error with --strict).
	cfg = secureConf(t, "script_user no_such_user_xlb", "/usr/bin/true")
	require.NoError(t, Secure(cfg, false))
	assert.Contains(t, warnings(cfg), "keepalived.conf:1: Script user 'no_such_user_xlb' does not exist: Error setting global script uid/gid: the scripts it concerns are dropped, as keepalived drops them")
	assert.Empty(t, cfg.Scripts, "the vrrp_script is dropped")
}

// enable_script_security with neither script_user nor a keepalived_script
// user: keepalived cannot pick a user and reports a configuration error.
func TestSecureNeedsAUser(t *testing.T) {
	needRoot(t)
	if _, err := user.Lookup("keepalived_script"); err == nil {
		t.Skip("this machine has a keepalived_script user")
	}
	cfg := secureConf(t, "enable_script_security", "/usr/bin/true")
	require.NoError(t, Secure(cfg, false))
	assert.Contains(t, warnings(cfg), "Unable to set default user keepalived_script for script")
	assert.Empty(t, cfg.Scripts, "the vrrp_script is dropped, as keepalived drops it")

	// Once seen, enable_script_security stays on across reloads.
	cfg = secureConf(t, "script_user root", filepath.Join(t.TempDir(), "missing"))
	require.NoError(t, Secure(cfg, true))
	assert.Contains(t, warnings(cfg), "stays on until xlb restarts")
	assert.NotContains(t, warnings(cfg), "SECURITY VIOLATION")
}
