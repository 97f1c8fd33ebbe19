// Package scripts runs the scripts keepalived.conf names: notify and quorum
// scripts, vrrp_script track scripts. Each runs directly (argv, no shell),
// as its user or else the default script user, with a timeout after which
// its whole process group is killed, as pkg/health's MISC_CHECK runs its
// command.
package scripts

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/health"
)

// Timeout bounds a notify or quorum script.
const Timeout = 30 * time.Second

// Runner runs a notify or quorum script, saying why in the log; callers
// call it without holding their locks. It returns at once.
type Runner func(s *config.Script, why string)

// Pool runs scripts in the background, as their user (Secure filled in
// the default), with Timeout, logging the outcome; Close waits
// for them, and kills those that outlast it, so that none outlives the
// daemon.
type Pool struct {
	log  *slog.Logger
	ctx  context.Context
	kill context.CancelFunc
	wg   sync.WaitGroup
}

// NewPool is an empty Pool.
func NewPool(log *slog.Logger) *Pool {
	ctx, kill := context.WithCancel(context.Background())
	return &Pool{log: log, ctx: ctx, kill: kill}
}

// Runner runs scripts in the pool.
func (p *Pool) Runner() Runner {
	return func(s *config.Script, why string) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := Run(p.ctx, s, Timeout); err != nil {
				p.log.Warn("script failed", "script", s.Args, "why", why, "error", err)
				return
			}
			p.log.Info("script ran", "script", s.Args, "why", why)
		}()
	}
}

// Close gives the running scripts (a notify_stop among them) up to grace
// to end, then kills what is left, each with its process group, and waits
// for it.
func (p *Pool) Close(grace time.Duration) {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		p.log.Warn("killing the scripts still running at exit", "after", grace)
		p.kill()
		<-done
	}
	p.kill()
}

// Run runs s, as s.User ("" = as xlb), and waits for it; a non-zero exit
// is an error.
func Run(ctx context.Context, s *config.Script, timeout time.Duration) error {
	r := (&health.MiscCheck{Args: s.Args, Exec: s.Exec, Timeout: timeout, User: s.User, Group: s.Group}).Check(ctx)
	return r.Err
}
