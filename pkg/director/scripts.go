package director

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/xlbproject/xlb/pkg/config"
)

// ScriptTimeout bounds a notify or quorum script.
const ScriptTimeout = 30 * time.Second

// ExecScripts runs scripts directly (argv, no shell), as the script's user
// or else defaultUser when running as root, with ScriptTimeout, logging
// the outcome. It returns at once; the script runs in the background.
func ExecScripts(log *slog.Logger, defaultUser string) ScriptRunner {
	return func(s *config.Script, why string) {
		go func() {
			if err := runScript(s, defaultUser); err != nil {
				log.Warn("script failed", "script", s.Args, "why", why, "error", err)
				return
			}
			log.Info("script ran", "script", s.Args, "why", why)
		}()
	}
}

func runScript(s *config.Script, defaultUser string) error {
	return runScriptTimeout(context.Background(), s, defaultUser, ScriptTimeout)
}

// runScriptTimeout runs s directly (no shell) as its user, killing its
// process group at the timeout; a non-zero exit is an error.
func runScriptTimeout(ctx context.Context, s *config.Script, defaultUser string, timeout time.Duration) error {
	if len(s.Args) == 0 {
		return fmt.Errorf("empty script")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.Args[0], s.Args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	name := s.User
	if name == "" {
		name = defaultUser
	}
	if name != "" && os.Geteuid() == 0 {
		cred, err := credential(name, s.Group)
		if err != nil {
			return err
		}
		cmd.SysProcAttr.Credential = cred
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

func credential(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("script user %q: %w", name, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("script group %q: %w", group, err)
		}
		gid, _ = strconv.ParseUint(g.Gid, 10, 32)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
