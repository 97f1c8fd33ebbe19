package director

import (
	"context"
	"log/slog"
	"time"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/health"
)

// ScriptTimeout bounds a notify or quorum script.
const ScriptTimeout = 30 * time.Second

// ExecScripts runs scripts directly (argv, no shell), as the script's user
// or else defaultUser when running as root, with ScriptTimeout, logging
// the outcome. It returns at once; the script runs in the background.
func ExecScripts(log *slog.Logger, defaultUser string) ScriptRunner {
	return func(s *config.Script, why string) {
		go func() {
			if err := runScriptTimeout(context.Background(), s, defaultUser, ScriptTimeout); err != nil {
				log.Warn("script failed", "script", s.Args, "why", why, "error", err)
				return
			}
			log.Info("script ran", "script", s.Args, "why", why)
		}()
	}
}

// runScriptTimeout runs s as MISC_CHECK runs its command (pkg/health: no
// shell, as its user, its process group killed at the timeout); a non-zero
// exit is an error.
func runScriptTimeout(ctx context.Context, s *config.Script, defaultUser string, timeout time.Duration) error {
	user := s.User
	if user == "" {
		user = defaultUser
	}
	r := (&health.MiscCheck{Args: s.Args, Timeout: timeout, User: user, Group: s.Group}).Check(ctx)
	return r.Err
}
