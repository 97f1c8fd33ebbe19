// Package scripts runs the scripts keepalived.conf names: notify and quorum
// scripts, vrrp_script track scripts. Each runs directly (argv, no shell),
// as its user or else the default script user, with a timeout after which
// its whole process group is killed, as pkg/health's MISC_CHECK runs its
// command.
package scripts

import (
	"context"
	"log/slog"
	"os/user"
	"time"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/health"
)

// Timeout bounds a notify or quorum script.
const Timeout = 30 * time.Second

// Runner runs a notify or quorum script, saying why in the log; callers
// call it without holding their locks. It returns at once.
type Runner func(s *config.Script, why string)

// Exec is a Runner that runs scripts in the background, as the script's
// user or else defaultUser when running as root, with Timeout, logging the
// outcome.
func Exec(log *slog.Logger, defaultUser string) Runner {
	return func(s *config.Script, why string) {
		go func() {
			if err := Run(context.Background(), s, defaultUser, Timeout); err != nil {
				log.Warn("script failed", "script", s.Args, "why", why, "error", err)
				return
			}
			log.Info("script ran", "script", s.Args, "why", why)
		}()
	}
}

// Run runs s and waits for it; a non-zero exit is an error.
func Run(ctx context.Context, s *config.Script, defaultUser string, timeout time.Duration) error {
	u := s.User
	if u == "" {
		u = defaultUser
	}
	r := (&health.MiscCheck{Args: s.Args, Timeout: timeout, User: u, Group: s.Group}).Check(ctx)
	return r.Err
}

// DefaultUser is keepalived's default script user: script_user, else
// keepalived_script if that user exists, else "" (root, as xlb runs).
func DefaultUser(cfg *config.Config) string {
	if cfg.Global.ScriptUser != "" {
		return cfg.Global.ScriptUser
	}
	if _, err := user.Lookup("keepalived_script"); err == nil {
		return "keepalived_script"
	}
	return ""
}
