package smtp

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// queueLen bounds the mails waiting: a flapping pool with a dead mail
// server must not grow memory without end.
const queueLen = 256

// Alerter sends mails to a Server in the background, one at a time and in
// the order given. A failed mail is logged and dropped, as keepalived
// drops it.
type Alerter struct {
	srv    Server
	log    *slog.Logger
	now    func() time.Time
	queue  chan Mail
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	// mu orders Alert before Close: no mail is queued once the queue is
	// closed (a VRRP instance's STOP mail may come late).
	mu     sync.RWMutex
	closed bool
}

// NewAlerter starts an Alerter. Close stops it.
func NewAlerter(srv Server, log *slog.Logger) *Alerter {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Alerter{srv: srv, log: log, now: time.Now, queue: make(chan Mail, queueLen), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go a.run()
	return a
}

// Alert queues m without waiting. When the queue is full, or the Alerter
// closed, m is dropped and logged.
func (a *Alerter) Alert(m Mail) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.log.Warn("smtp alert dropped: alerts stopped", "subject", m.Subject)
		return
	}
	select {
	case a.queue <- m:
	default:
		a.log.Warn("smtp alert dropped: too many waiting", "subject", m.Subject)
	}
}

// Close sends what is queued, waiting at most grace for it, and stops.
func (a *Alerter) Close(grace time.Duration) {
	a.once.Do(func() {
		a.mu.Lock()
		a.closed = true
		close(a.queue)
		a.mu.Unlock()
		t := time.AfterFunc(grace, a.cancel)
		<-a.done
		t.Stop()
		a.cancel()
	})
}

func (a *Alerter) run() {
	defer close(a.done)
	for m := range a.queue {
		if a.ctx.Err() != nil {
			a.log.Warn("smtp alert not sent: stopping", "subject", m.Subject)
			continue
		}
		if err := a.srv.Send(a.ctx, m, a.now()); err != nil {
			a.log.Warn("smtp alert failed", "subject", m.Subject, "error", err)
			continue
		}
		a.log.Info("smtp alert sent", "subject", m.Subject)
	}
}
