// Package demo is `xlb demo`: a director on a built-in topology of network
// namespaces forwarding real HTTP in DR mode with wrr, and a report of
// each real's share against the share its weight predicts.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/dataplane/xdp"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// Options shape a demo run.
type Options struct {
	Requests int
	Weights  []int32
	Mode     dataplane.XDPMode
	Out      io.Writer
	Log      *slog.Logger
}

// RealResult is one real's line of the report.
type RealResult struct {
	Addr     string
	Weight   int32
	Expected int    // connections wrr predicts for the requests sent
	Counted  uint64 // connections the director counted
	Answered int    // responses the client got from this real
}

// Result is what a demo run measured.
type Result struct {
	Mode    dataplane.XDPMode
	Sent    int
	Failed  int
	Reals   []RealResult
	Matches bool // every real got exactly what wrr predicts
}

// Preflight says in one sentence what is missing to run the demo.
func Preflight() error {
	if os.Geteuid() != 0 {
		return errors.New("xlb demo needs root: it creates network namespaces and loads BPF programs (try: sudo make demo)")
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()},
	})
	if err != nil {
		return fmt.Errorf("this kernel does not let xlb load an XDP program (%v): it needs a kernel built with BPF and XDP, 5.15 or newer", err)
	}
	prog.Close()
	for _, tool := range []string{"ip", "nsenter", "ethtool", "sysctl"} {
		if err := testutil.Run("sh", "-c", "command -v "+tool); err != nil {
			return fmt.Errorf("xlb demo needs the %s command (Debian: apt-get install iproute2 util-linux ethtool procps)", tool)
		}
	}
	return nil
}

// Run builds the topology, forwards the requests, reports, and removes
// everything it made, also when ctx is cancelled.
func Run(ctx context.Context, o Options) (_ *Result, err error) {
	if o.Requests <= 0 {
		o.Requests = 300
	}
	if len(o.Weights) == 0 {
		o.Weights = []int32{3, 2, 1}
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := Preflight(); err != nil {
		return nil, err
	}
	step := func(s string) { fmt.Fprintf(o.Out, "%s\n", s) }

	step(fmt.Sprintf("building namespaces: a client, a director and %d real HTTP servers on one bridge", len(o.Weights)))
	topo, err := testutil.NewDR(testutil.DROptions{Reals: len(o.Weights), Native: true})
	if err != nil {
		return nil, fmt.Errorf("build topology: %w", err)
	}
	defer func() {
		step("cleaning up: detaching xlb, removing namespaces")
		if cerr := topo.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("clean up topology: %w", cerr)
		}
	}()
	if err := topo.ServeHTTP(80); err != nil {
		return nil, fmt.Errorf("start HTTP servers: %w", err)
	}

	nl, err := topo.Director.Netlink()
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	var x *xdp.Dataplane
	err = topo.Director.Do(func() (err error) {
		x, err = xdp.Open(xdp.Config{
			Interfaces: []string{topo.DirectorIf},
			PinDir:     "/sys/fs/bpf/xlb-demo-" + testutil.Suffix(),
			Mode:       o.Mode,
			MaxConns:   65536,
			Resolver:   xdp.NeighResolver{Handle: nl},
			Logger:     o.Log,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attach xlb to the director: %w", err)
	}
	defer func() {
		if cerr := x.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("detach xlb: %w", cerr)
		}
	}()
	res := &Result{Mode: x.Modes()[topo.DirectorIf]}

	svc := dataplane.Service{
		ServiceKey: dataplane.ServiceKey{Addr: topo.VIP, Port: 80, Protocol: lvs.TCP},
		Scheduler:  "wrr",
	}
	for i, w := range o.Weights {
		svc.Reals = append(svc.Reals, dataplane.Real{Addr: topo.RealAddrs[i], Port: 80, Weight: w, Forward: lvs.DR})
	}
	if err := topo.Director.Do(func() error { return x.Apply([]dataplane.Service{svc}) }); err != nil {
		return nil, fmt.Errorf("apply service: %w", err)
	}
	if err := waitResolved(ctx, x); err != nil {
		return nil, err
	}
	step(fmt.Sprintf("xlb attached to the director's %s (%s XDP), service %s, wrr, DR", topo.DirectorIf, res.Mode, svc.ServiceKey))

	// What IPVS's wrr would pick for the same sequence of new connections,
	// over the dest list as the data plane holds it (as the kernel does,
	// newest first).
	st0, err := x.Stats()
	if err != nil {
		return nil, err
	}
	var ds []sched.Dest
	for _, rs := range st0.Services[0].Reals {
		ds = append(ds, sched.Dest{Weight: rs.Weight})
	}
	ref := sched.WRRFilled(ds) // the service was made empty, then filled
	expected := make([]int, len(ds))
	for range o.Requests {
		if i := ref.Pick(ds); i >= 0 {
			expected[i]++
		}
	}

	answered := map[string]int{}
	client := topo.HTTPClient()
	url := fmt.Sprintf("http://%s/", svc.ServiceKey.Addr.String()+":80")
	progress := newProgress(o.Out, o.Requests)
	for i := range o.Requests {
		if ctx.Err() != nil {
			progress.done()
			return nil, ctx.Err()
		}
		name, err := testutil.Get(ctx, client, url)
		if ctx.Err() != nil {
			progress.done()
			return nil, ctx.Err()
		}
		if err != nil {
			res.Failed++
			o.Log.Warn("request failed", "n", i, "error", err)
		} else {
			answered[name]++
		}
		res.Sent++
		progress.update(i+1, res.Failed)
	}
	progress.done()

	st, err := x.Stats()
	if err != nil {
		return nil, err
	}
	res.Matches = res.Failed == 0
	for i, rs := range st.Services[0].Reals {
		rr := RealResult{
			Addr:     rs.Addr.String(),
			Weight:   rs.Weight,
			Expected: expected[i],
			Counted:  rs.Conns,
			Answered: answered[fmt.Sprintf("r%d", slices.Index(topo.RealAddrs, rs.Addr)+1)],
		}
		res.Matches = res.Matches && rr.Counted == uint64(rr.Expected) && rr.Answered == rr.Expected
		res.Reals = append(res.Reals, rr)
	}
	slices.SortFunc(res.Reals, func(a, b RealResult) int { return strings.Compare(a.Addr, b.Addr) })
	report(o.Out, res)
	return res, nil
}

func waitResolved(ctx context.Context, x *xdp.Dataplane) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := x.Stats()
		if err != nil {
			return err
		}
		var missing []string
		for _, rs := range st.Services[0].Reals {
			if !rs.Resolved {
				missing = append(missing, rs.Addr.String())
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reals %s did not answer ARP within 10 s", strings.Join(missing, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func report(w io.Writer, r *Result) {
	var total uint64
	var weights int32
	for _, rr := range r.Reals {
		total += rr.Counted
		weights += rr.Weight
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "real\tweight\tweight share\twrr predicts\tdirector counted\tcounted share\tclient got\t")
	for _, rr := range r.Reals {
		share := 0.0
		if total > 0 {
			share = 100 * float64(rr.Counted) / float64(total)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%d\t%d\t%.1f%%\t%d\t\n", rr.Addr, rr.Weight,
			100*float64(rr.Weight)/float64(weights), rr.Expected, rr.Counted, share, rr.Answered)
	}
	tw.Flush()
	switch {
	case r.Failed > 0:
		fmt.Fprintf(w, "%d of %d requests failed.\n", r.Failed, r.Sent)
	case r.Matches:
		fmt.Fprintf(w, "all %d requests answered; every real got exactly what IPVS's wrr predicts.\n", r.Sent)
	default:
		fmt.Fprintf(w, "all %d requests answered, but the shares differ from what wrr predicts.\n", r.Sent)
	}
}

// progress is one line, rewritten in place.
type progress struct {
	w     io.Writer
	total int
	last  time.Time
}

func newProgress(w io.Writer, total int) *progress { return &progress{w: w, total: total} }

func (p *progress) update(n, failed int) {
	if n != p.total && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	const width = 30
	fill := width * n / p.total
	fmt.Fprintf(p.w, "\rsending HTTP requests through the VIP [%s%s] %d/%d, %d failed",
		strings.Repeat("=", fill), strings.Repeat(" ", width-fill), n, p.total, failed)
}

func (p *progress) done() { fmt.Fprintln(p.w) }
