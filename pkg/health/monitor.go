package health

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultDelayLoop is keepalived's delay_loop, used when a Policy's is zero.
const DefaultDelayLoop = 60 * time.Second

// Policy is how keepalived schedules one checker.
type Policy struct {
	// DelayLoop is the time between checks (delay_loop). Zero means
	// DefaultDelayLoop.
	DelayLoop time.Duration
	// Retry is how many times a failed check is retried before an up
	// checker goes down (retry): Retry 2 takes three failures in a row.
	Retry int
	// DelayBeforeRetry is the time from a failed check to its retry
	// (delay_before_retry). Zero means DelayLoop, as keepalived defaults
	// DNS_CHECK's.
	DelayBeforeRetry time.Duration
	// Warmup delays the first check by a random time in [0, Warmup)
	// (warmup), to spread the checks of many reals. Zero checks at once.
	Warmup time.Duration
	// Alpha starts the checker down (alpha); otherwise it starts up.
	Alpha bool
}

func (p *Policy) delayLoop() time.Duration {
	if p.DelayLoop <= 0 {
		return DefaultDelayLoop
	}
	return p.DelayLoop
}

func (p *Policy) delayBeforeRetry() time.Duration {
	if p.DelayBeforeRetry <= 0 {
		return p.delayLoop()
	}
	return p.DelayBeforeRetry
}

// Probe is one checker of a real server and its schedule.
type Probe struct {
	// Name names the checker in Transition.Reason, as
	// "HTTP_GET 10.0.0.21:80".
	Name    string
	Checker Checker
	Policy
}

// Transition is a change of a real server's state: up to down, down to up,
// or a new weight from a misc_dynamic MISC_CHECK or a FILE_CHECK.
type Transition struct {
	Real string // MonitorConfig.Real
	Up   bool
	// Weight is the real server's weight as its checkers set it, nil
	// while they set none: then the configured weight stands. It is the
	// last weight a misc_dynamic check set (else MonitorConfig.Weight)
	// plus what the FILE_CHECKs that are up add, in [0, MaxInt32] as
	// keepalived's real_weight() bounds it.
	Weight *int
	Reason string    // which checker, and why
	At     time.Time // from the Monitor's clock
}

// MonitorConfig is what a Monitor watches.
type MonitorConfig struct {
	// Real names the real server in each Transition, as the daemon keys
	// it (a real is per virtual server: "10.0.0.100:80/10.0.0.21:80").
	Real string
	// Weight is the real server's configured weight, which FILE_CHECK
	// weights add to.
	Weight int
	// Probes must all be up for the real to be up. None: always up.
	Probes []Probe
	// Omega makes a graceful Stop report the real down if it is up, so
	// that notify_down and quorum handling run on shutdown or removal,
	// as keepalived's omega does.
	Omega bool
	// Clock schedules the checks. Nil is SystemClock.
	Clock Clock
	// OnChecker, if set, is told each time one checker changes state,
	// which is when keepalived sends a checker's smtp_alert. It is called
	// with the Monitor's lock held and must not block.
	OnChecker func(CheckerChange)
}

// CheckerChange is one checker going up or down.
type CheckerChange struct {
	Probe  int    // its index in MonitorConfig.Probes
	Name   string // Probe.Name
	Up     bool
	Err    error // why it went down
	RealUp bool  // the real's state after the change
	// RealChanged says the change moved the real's state.
	RealChanged bool
	At          time.Time
}

// Monitor runs one real server's checkers on keepalived's schedule and
// reports its transitions. Each checker runs on its own schedule, as in
// keepalived; a checker's result is folded into the real's state when it
// arrives.
type Monitor struct {
	cfg   MonitorConfig
	clock Clock

	mu     sync.Mutex // serialises folding results and sending transitions
	probes []probeState
	up     bool
	weight *int // the last weight misc_dynamic set, nil if none has

	state   atomic.Pointer[realState] // for State without waiting on mu
	started atomic.Bool
	stop    chan struct{}
	stopped sync.Once
}

type realState struct {
	up     bool
	weight *int // as effectiveWeight
}

// NewMonitor returns a Monitor in its initial state: up unless a probe has
// Alpha.
func NewMonitor(cfg MonitorConfig) *Monitor {
	m := &Monitor{cfg: cfg, clock: cfg.Clock, stop: make(chan struct{})}
	if m.clock == nil {
		m.clock = SystemClock
	}
	m.probes = make([]probeState, len(cfg.Probes))
	for i := range cfg.Probes {
		m.probes[i] = probeState{up: !cfg.Probes[i].Alpha}
	}
	m.up = m.allUp()
	m.state.Store(&realState{up: m.up})
	return m
}

// State is the real's current state and its weight as its checkers set it
// (nil if they set none; see Transition.Weight). Before Run it is the
// initial state, which Run does not report as a transition.
func (m *Monitor) State() (up bool, weight *int) {
	s := m.state.Load()
	return s.up, copyWeight(s.weight)
}

// Run checks until Stop or until ctx is done, sending each transition on
// out. It blocks on out: keep receiving until Run returns. After Stop it
// returns nil, having sent the omega transition if configured; after ctx is
// done it returns ctx's error at once, sending nothing more. Checks under way
// are cancelled either way, and no goroutine of Run outlives it. Run runs
// once per Monitor.
func (m *Monitor) Run(ctx context.Context, out chan<- Transition) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("health: monitor of " + m.cfg.Real + " already ran")
	}
	checkCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i := range m.cfg.Probes {
		wg.Go(func() { m.runProbe(ctx, checkCtx, i, out) })
	}
	select {
	case <-m.stop:
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.cfg.Omega {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.up {
			m.up = false
			m.send(ctx, out, "omega: monitor stopped")
		}
	}
	return nil
}

// Stop ends Run gracefully. It does not wait for Run to return.
func (m *Monitor) Stop() {
	m.stopped.Do(func() { close(m.stop) })
}

// runProbe checks probe i on its schedule until checkCtx is done. Results
// are sent with ctx, so that a graceful stop does not drop a transition
// already found.
func (m *Monitor) runProbe(ctx, checkCtx context.Context, i int, out chan<- Transition) {
	p := &m.cfg.Probes[i]
	var delay time.Duration
	if p.Warmup > 0 {
		delay = rand.N(p.Warmup)
	}
	var changed <-chan struct{} // nil unless the checker is a Watcher
	if w, ok := p.Checker.(Watcher); ok {
		if c, err := w.Watch(checkCtx); err == nil {
			changed = c
		}
	}
	for {
		select {
		case <-checkCtx.Done():
			return
		case <-m.clock.After(delay):
		case <-changed:
		}
		r := p.Checker.Check(checkCtx)
		if checkCtx.Err() != nil {
			return // a cancelled check says nothing about the real
		}
		delay = m.fold(ctx, i, r, out)
	}
}

// fold applies probe i's result to the real's state, sends the transition if
// there is one, and returns when the probe checks next.
func (m *Monitor) fold(ctx context.Context, i int, r Result, out chan<- Transition) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := &m.cfg.Probes[i]
	wasWeight := m.effectiveWeight()
	next, changed := m.probes[i].observe(r, &p.Policy)
	if r.Up && r.Weight != nil {
		m.weight = copyWeight(r.Weight)
	}
	newWeight := !sameWeight(wasWeight, m.effectiveWeight())
	wasUp := m.up
	m.up = m.allUp()
	if changed && m.cfg.OnChecker != nil {
		m.cfg.OnChecker(CheckerChange{Probe: i, Name: p.Name, Up: r.Up, Err: r.Err, RealUp: m.up,
			RealChanged: m.up != wasUp, At: m.clock.Now()})
	}
	var reason string
	switch {
	case m.up != wasUp && !m.up:
		reason = p.Name + ": down"
		if r.Err != nil {
			reason = p.Name + ": " + r.Err.Error()
		}
		if p.Retry > 0 {
			reason += fmt.Sprintf(" (after %d retries)", p.Retry)
		}
	case m.up != wasUp:
		reason = p.Name + ": up; all checkers up"
	case newWeight:
		reason = p.Name + ": weight back to the configured one"
		if w := m.effectiveWeight(); w != nil {
			reason = fmt.Sprintf("%s: weight %d", p.Name, *w)
		}
	default:
		return next // no transition, even if this checker changed
	}
	m.send(ctx, out, reason)
	return next
}

// send publishes the state and reports it on out. m.mu is held.
func (m *Monitor) send(ctx context.Context, out chan<- Transition, reason string) {
	w := m.effectiveWeight()
	m.state.Store(&realState{up: m.up, weight: w})
	t := Transition{Real: m.cfg.Real, Up: m.up, Weight: copyWeight(w), Reason: reason, At: m.clock.Now()}
	select {
	case out <- t:
	case <-ctx.Done():
	}
}

func (m *Monitor) allUp() bool {
	for i := range m.probes {
		if !m.probes[i].up {
			return false
		}
	}
	return true
}

// effectiveWeight is the real's weight as its checkers set it, nil if
// they set none: the misc_dynamic weight (else the configured one) plus
// what each FILE_CHECK that is up adds, as keepalived sums its checkers'
// cur_weight into the real's effective_weight, bounded by real_weight().
func (m *Monitor) effectiveWeight() *int {
	var add int64
	for i := range m.probes {
		add += int64(m.probes[i].add)
	}
	if m.weight == nil && add == 0 {
		return nil
	}
	w := int64(m.cfg.Weight)
	if m.weight != nil {
		w = int64(*m.weight)
	}
	v := int(min(max(w+add, 0), math.MaxInt32))
	return &v
}

func sameWeight(a, b *int) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func copyWeight(w *int) *int {
	if w == nil {
		return nil
	}
	v := *w
	return &v
}

// probeState is one checker's state in keepalived's terms: is_up,
// retry_it and, for a FILE_CHECK, cur_weight.
type probeState struct {
	up      bool
	retries int
	add     int // what the checker adds to the real's weight (Result.AddWeight)
}

// observe applies one check result and returns the delay before the next
// check and whether the checker's up state changed. It is keepalived's
// checker epilog: a success brings the checker up at once; a failure of a
// checker that is up is retried p.Retry times p.DelayBeforeRetry apart
// before the checker goes down; a failure of a checker already down (alpha's
// initial state included) is not retried.
func (s *probeState) observe(r Result, p *Policy) (next time.Duration, changed bool) {
	if !r.Up && s.up && s.retries < p.Retry {
		s.retries++
		return p.delayBeforeRetry(), false
	}
	wasUp := s.up
	s.retries = 0
	s.up = r.Up
	// A checker that goes down stops adding to the weight (keepalived
	// zeroes cur_weight on FAULT).
	s.add = 0
	if r.Up && r.AddWeight != nil {
		s.add = *r.AddWeight
	}
	return p.delayLoop(), s.up != wasUp
}
