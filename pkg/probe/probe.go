package probe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	ebpffeatures "github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/pkg/dataplane"
)

// Feature names, as `xlb probe` prints them and XLB_PROBE_DENY takes them.
const (
	FeatureXDPNative   = "xdp-native"    // XDP in driver mode
	FeatureXDPGeneric  = "xdp-generic"   // XDP in generic (skb) mode
	FeatureTCX         = "tcx"           // TCX ingress link, kernel >= 6.6
	FeatureClsact      = "clsact"        // clsact qdisc with a cls_bpf filter, over netlink
	FeatureProgTestRun = "prog-test-run" // BPF_PROG_TEST_RUN of an XDP program
	FeatureIPVS        = "ipvs"          // the IPVS generic netlink family
)

// Features lists every feature in the order reports print them.
var Features = []string{FeatureXDPNative, FeatureXDPGeneric, FeatureTCX, FeatureClsact, FeatureProgTestRun, FeatureIPVS}

// DenyEnv names the environment variable DenyFromEnv reads.
const DenyEnv = "XLB_PROBE_DENY"

// Status is a probe's verdict.
type Status string

const (
	// OK means the kernel did it.
	OK Status = "ok"
	// Missing means the kernel refused, or the feature was denied by override.
	Missing Status = "missing"
	// Skip means the probe could not tell: no permission, or the interface
	// was not in a state to probe (for example it already runs XDP).
	Skip Status = "skip"
)

var (
	// ErrDenied marks a feature turned off by XLB_PROBE_DENY or Options.Deny.
	ErrDenied = errors.New("denied by override (XLB_PROBE_DENY)")
	// ErrSkipped marks a probe that could not run; its error says why.
	ErrSkipped = errors.New("probe skipped")
)

// Result is one feature's verdict. Reason is one sentence saying why it is
// missing or skipped; it is empty when Status is OK.
type Result struct {
	Feature string `json:"feature"`
	Status  Status `json:"status"`
	Reason  string `json:"reason,omitempty"`
}

// Report is what Run found on one kernel.
type Report struct {
	Kernel  string   `json:"kernel"` // uname -r
	Results []Result `json:"results"`
	// Dataplane is what `xlb run --dataplane auto` picks on the probed
	// interface: xdp-native, xdp-generic, ipvs or none; DataplaneReason
	// says why it stepped down from native XDP.
	Dataplane       string `json:"dataplane"`
	DataplaneReason string `json:"dataplane_reason,omitempty"`
}

// Get returns the result for a feature.
func (r Report) Get(feature string) (Result, bool) {
	for _, res := range r.Results {
		if res.Feature == feature {
			return res, true
		}
	}
	return Result{}, false
}

// Options tune Run.
type Options struct {
	// Interface is where the attach probes attach. Empty means a veth
	// pair inside a network namespace Run creates and always removes,
	// which is the safe default: attaching native XDP makes some NIC
	// drivers reset their rings, dropping packets for a moment.
	Interface string
	// Deny lists features to report as missing without probing them.
	Deny []string
}

// DenyFromEnv returns the feature names in XLB_PROBE_DENY, a comma- or
// space-separated list such as "xdp-native,xdp-generic".
func DenyFromEnv() []string {
	return parseDeny(os.Getenv(DenyEnv))
}

func parseDeny(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		f = strings.ToLower(f)
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// Run probes every feature and reports what this kernel can do. It never
// fails as a whole: a probe that cannot run is reported as skipped, with
// the reason.
func Run(ctx context.Context, opts Options) Report {
	rep := Report{Kernel: KernelRelease()}
	denied := func(f string) bool { return slices.Contains(opts.Deny, f) }

	attach := map[string]func(int) error{
		FeatureXDPNative:  xdpNative,
		FeatureXDPGeneric: xdpGeneric,
		FeatureTCX:        tcx,
		FeatureClsact:     clsact,
	}
	errs := map[string]error{}
	var wanted []string
	for _, f := range []string{FeatureXDPNative, FeatureXDPGeneric, FeatureTCX, FeatureClsact} {
		if !denied(f) {
			wanted = append(wanted, f)
		}
	}
	if len(wanted) > 0 {
		err := onInterface(opts.Interface, func(ifindex int) {
			for _, f := range wanted {
				if ctx.Err() != nil {
					errs[f] = skipped(ctx.Err())
					continue
				}
				errs[f] = attach[f](ifindex)
			}
		})
		if err != nil {
			for _, f := range wanted {
				errs[f] = skipped(err)
			}
		}
	}
	if !denied(FeatureProgTestRun) {
		errs[FeatureProgTestRun] = progTestRun()
	}
	if !denied(FeatureIPVS) {
		errs[FeatureIPVS] = ipvs(ctx)
	}

	for _, f := range Features {
		err, probed := errs[f]
		if !probed {
			err = ErrDenied
		}
		rep.Results = append(rep.Results, result(f, err))
	}
	rep.Dataplane, rep.DataplaneReason = rep.choose(XDPDataPlane())
	return rep
}

// choose is dataplane.Choose on what the report found: the data plane
// `xlb run --dataplane auto` picks, and why it stepped down. tooOld is
// XDPDataPlane's verdict. A probe that could not tell (skip) counts as a
// refusal here; the daemon would try the attach and learn then.
func (r Report) choose(tooOld error) (string, string) {
	refused := func(f string) error {
		res, _ := r.Get(f)
		if res.Status == OK {
			return nil
		}
		return errors.New(orStatus(res))
	}
	d := dataplane.Choose(dataplane.Evidence{
		Native:  refused(FeatureXDPNative),
		Generic: refused(FeatureXDPGeneric),
		Program: tooOld,
		IPVS:    refused(FeatureIPVS),
	})
	return d.String(), strings.Join(d.Why, "; ")
}

func orStatus(res Result) string {
	if res.Reason != "" {
		return res.Reason
	}
	return string(res.Status)
}

func result(feature string, err error) Result {
	switch {
	case err == nil:
		return Result{Feature: feature, Status: OK}
	case errors.Is(err, ErrSkipped), errors.Is(err, os.ErrPermission):
		return Result{Feature: feature, Status: Skip, Reason: err.Error()}
	default:
		return Result{Feature: feature, Status: Missing, Reason: err.Error()}
	}
}

// skipError says why a probe could not run; it matches ErrSkipped.
type skipError struct{ err error }

func (e skipError) Error() string        { return e.err.Error() }
func (e skipError) Unwrap() error        { return e.err }
func (e skipError) Is(target error) bool { return target == ErrSkipped }

func skipped(err error) error { return skipError{err} }

// checkDeny returns ErrDenied when XLB_PROBE_DENY names the feature; the
// exported probes call it first, so the override reaches every caller.
func checkDeny(feature string) error {
	if slices.Contains(DenyFromEnv(), feature) {
		return fmt.Errorf("%s: %w", feature, ErrDenied)
	}
	return nil
}

// KernelRelease is the running kernel's release (uname -r).
func KernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// XDPDataPlane says whether the running kernel has what xlb's XDP data
// plane needs beyond attaching (Linux 5.15): its sweeper walks the flow
// table with bpf_for_each_map_elem (5.13) and counts with BPF atomics. The
// error names the kernel.
func XDPDataPlane() error {
	if err := ebpffeatures.HaveProgramHelper(ebpf.XDP, asm.FnForEachMapElem); err != nil {
		return fmt.Errorf("kernel %s is older than the XDP data plane needs (5.15: bpf_for_each_map_elem, BPF atomics): %w", KernelRelease(), err)
	}
	return nil
}
