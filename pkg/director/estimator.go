package director

import (
	"context"
	"time"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/ipvsadm"
)

// EstimatorInterval is IPVS's rate estimator period.
const EstimatorInterval = 2 * time.Second

// estimator is IPVS's rate estimator (ip_vs_est.c): every 2 s, the
// counters' change, scaled, moves an exponentially weighted average by a
// quarter of the difference. Rates are read back rounded, per second.
type estimator struct {
	last                          dataplane.Counters
	cps, inpps, outpps, inbps, ob int64
	started                       bool
}

func (e *estimator) update(c dataplane.Counters) {
	if !e.started {
		e.last, e.started = c, true
		return
	}
	step := func(avg *int64, now, last uint64, shift uint) {
		rate := int64(now-last) << shift
		*avg += (rate - *avg) >> 2
	}
	step(&e.cps, c.Conns, e.last.Conns, 9)
	step(&e.inpps, c.Packets, e.last.Packets, 9)
	step(&e.outpps, c.OutPackets, e.last.OutPackets, 9)
	step(&e.inbps, c.Bytes, e.last.Bytes, 4)
	step(&e.ob, c.OutBytes, e.last.OutBytes, 4)
	e.last = c
}

func (e *estimator) rates() ipvsadm.Rates {
	r := func(v int64, shift uint, round int64) uint64 {
		if v < 0 {
			return 0
		}
		return uint64((v + round) >> shift)
	}
	return ipvsadm.Rates{
		CPS: r(e.cps, 10, 0x1ff), InPPS: r(e.inpps, 10, 0x1ff), OutPPS: r(e.outpps, 10, 0x1ff),
		InBPS: r(e.inbps, 5, 0xf), OutBPS: r(e.ob, 5, 0xf),
	}
}

// RunEstimator samples the data plane's counters every
// EstimatorInterval for ipvsadm --rate, until ctx ends.
func (d *Director) RunEstimator(ctx context.Context) {
	t := time.NewTicker(EstimatorInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.sampleRates()
	}
}

func (d *Director) sampleRates() {
	stats, err := d.opts.Dataplane.Stats()
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.est == nil {
		d.est = map[string]*estimator{}
	}
	seen := map[string]bool{}
	upd := func(k string, c dataplane.Counters) {
		seen[k] = true
		e := d.est[k]
		if e == nil {
			e = &estimator{}
			d.est[k] = e
		}
		e.update(c)
	}
	for _, s := range stats.Services {
		sk := rateKey(s.ServiceKey, nil)
		upd(sk, s.Counters)
		for _, r := range s.Reals {
			upd(rateKey(s.ServiceKey, &r.Real), r.Counters)
		}
	}
	for k := range d.est {
		if !seen[k] {
			delete(d.est, k)
		}
	}
}

func rateKey(k dataplane.ServiceKey, r *dataplane.Real) string {
	s := k.String()
	if r != nil {
		s += " " + r.String()
	}
	return s
}
