package testutil

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Load is a client making sequential HTTP requests, each on a new
// connection, recording who answered, what failed, and when.
type Load struct {
	mu      sync.Mutex
	results []Result
	stop    chan struct{}
	done    chan struct{}
}

// Result is one request of a Load.
type Result struct {
	At   time.Time // when it was sent
	Took time.Duration
	Name string // the body: the real's name
	Err  error
}

// StartLoad sends GET url with c, one request after another, until End or
// max requests.
func StartLoad(c *http.Client, url string, max int) *Load {
	l := &Load{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for range max {
			select {
			case <-l.stop:
				return
			default:
			}
			start := time.Now()
			name, err := Get(context.Background(), c, url)
			l.mu.Lock()
			l.results = append(l.results, Result{At: start, Took: time.Since(start), Name: name, Err: err})
			l.mu.Unlock()
		}
	}()
	return l
}

// End stops the load and returns every result.
func (l *Load) End() []Result {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
	return l.Since(time.Time{})
}

// Since returns the results of requests sent after t0.
func (l *Load) Since(t0 time.Time) []Result {
	return l.Between(t0, time.Time{})
}

// Between returns the results of requests sent after from and (unless
// to is zero) before to.
func (l *Load) Between(from, to time.Time) []Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Result
	for _, r := range l.results {
		if r.At.After(from) && (to.IsZero() || r.At.Before(to)) {
			out = append(out, r)
		}
	}
	return out
}

// Failures are the errors among rs.
func Failures(rs []Result) []error {
	var out []error
	for _, r := range rs {
		if r.Err != nil {
			out = append(out, r.Err)
		}
	}
	return out
}

// Names are who answered rs, failures left out.
func Names(rs []Result) []string {
	var out []string
	for _, r := range rs {
		if r.Err == nil {
			out = append(out, r.Name)
		}
	}
	return out
}
