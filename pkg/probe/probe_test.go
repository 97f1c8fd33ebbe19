package probe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/xlbproject/xlb/internal/nlretry"
	"github.com/xlbproject/xlb/internal/testutil"
)

func TestParseDeny(t *testing.T) {
	for in, want := range map[string][]string{
		"":                             nil,
		"xdp-native":                   {"xdp-native"},
		"xdp-native,xdp-generic":       {"xdp-native", "xdp-generic"},
		" XDP-Native , ,tcx  ipvs,tcx": {"xdp-native", "tcx", "ipvs"},
	} {
		assert.Equal(t, want, parseDeny(in), "%q", in)
	}
}

// The single probes honour XLB_PROBE_DENY before touching the kernel, so
// this needs no privileges.
func TestSingleProbesHonourEnvDeny(t *testing.T) {
	t.Setenv(DenyEnv, strings.Join(Features, ","))
	for f, probe := range map[string]func() error{
		FeatureXDPNative:   func() error { return XDPNative(1) },
		FeatureXDPGeneric:  func() error { return XDPGeneric(1) },
		FeatureTCX:         func() error { return TCX(1) },
		FeatureClsact:      func() error { return Clsact(1) },
		FeatureProgTestRun: ProgTestRun,
		FeatureIPVS:        IPVS,
	} {
		err := probe()
		assert.ErrorIs(t, err, ErrDenied, f)
		assert.ErrorContains(t, err, f)
	}
}

func TestResultClassification(t *testing.T) {
	assert.Equal(t, Result{Feature: "x", Status: OK}, result("x", nil))
	assert.Equal(t, Result{Feature: "x", Status: Missing, Reason: "denied by override (XLB_PROBE_DENY)"}, result("x", ErrDenied))
	assert.Equal(t, Skip, result("x", skipped(errors.New("busy"))).Status)
	assert.Equal(t, Skip, result("x", fmt.Errorf("load: %w", os.ErrPermission)).Status)
	r := result("x", errors.New("attach native XDP to veth0 (veth): operation not supported"))
	assert.Equal(t, Missing, r.Status)
	assert.Equal(t, "attach native XDP to veth0 (veth): operation not supported", r.Reason)
}

// TestRun probes the kernel the test runs on, in the probe's own temporary
// namespace, and checks that nothing is left behind.
func TestRun(t *testing.T) {
	requireRoot(t)
	links, netnsFiles, threads := hostLinks(t), runNetns(t), threadNetns(t)

	rep := Run(context.Background(), Options{})
	t.Logf("%+v", rep)

	assert.Equal(t, KernelRelease(), rep.Kernel)
	assert.Equal(t, Features, features(rep))
	for _, f := range []string{FeatureXDPNative, FeatureXDPGeneric, FeatureClsact, FeatureProgTestRun} {
		assertStatus(t, rep, f, OK)
	}
	if kernelAtLeast(t, 6, 6) {
		assertStatus(t, rep, FeatureTCX, OK)
	} else {
		assertStatus(t, rep, FeatureTCX, Missing)
	}
	assertIPVS(t, rep)

	assert.Equal(t, links, hostLinks(t), "links in the test's namespace changed")
	assert.Equal(t, netnsFiles, runNetns(t), "named network namespaces changed")
	assertNoThreadInNewNetns(t, threads)
}

// assertIPVS checks the ipvs verdict against /proc/net/ip_vs, which exists
// exactly when the ip_vs module is loaded. The vmtest guest loads ip_vs, so
// there IPVS must be found.
func assertIPVS(t *testing.T, rep Report) {
	t.Helper()
	_, err := os.Stat("/proc/net/ip_vs")
	switch {
	case os.Getenv("VMTEST") == "1" || err == nil:
		assertStatus(t, rep, FeatureIPVS, OK)
	default:
		r := assertStatus(t, rep, FeatureIPVS, Missing)
		assert.Contains(t, r.Reason, "genetlink family IPVS not found")
	}
}

func TestRunDeny(t *testing.T) {
	requireRoot(t)
	rep := Run(context.Background(), Options{Deny: []string{FeatureXDPNative, FeatureXDPGeneric}})
	for _, f := range []string{FeatureXDPNative, FeatureXDPGeneric} {
		r := assertStatus(t, rep, f, Missing)
		assert.Equal(t, "denied by override (XLB_PROBE_DENY)", r.Reason)
	}
	assertStatus(t, rep, FeatureClsact, OK)
	assertStatus(t, rep, FeatureProgTestRun, OK)
	if res, _ := rep.Get(FeatureIPVS); res.Status == OK {
		assert.Equal(t, FeatureIPVS, rep.Dataplane)
	} else {
		assert.Equal(t, "none", rep.Dataplane)
	}
	assert.Contains(t, rep.DataplaneReason, "xdp-native: denied by override")
}

// The data plane a report implies steps down native XDP → generic XDP →
// IPVS, and says why at every step.
func TestChoose(t *testing.T) {
	rep := func(native, generic, ipvs Status) Report {
		r := Report{}
		for f, st := range map[string]Status{FeatureXDPNative: native, FeatureXDPGeneric: generic, FeatureIPVS: ipvs} {
			res := Result{Feature: f, Status: st}
			if st != OK {
				res.Reason = f + " refused"
			}
			r.Results = append(r.Results, res)
		}
		return r
	}
	old := errors.New("kernel 5.10 is older than the XDP data plane needs")
	for _, c := range []struct {
		r         Report
		tooOld    error
		want, why string
	}{
		{rep(OK, OK, OK), nil, "xdp-native", ""},
		{rep(Missing, OK, Missing), nil, "xdp-generic", "xdp-native: xdp-native refused"},
		{rep(Missing, Missing, OK), nil, "ipvs", "xdp-native: xdp-native refused; xdp-generic: xdp-generic refused"},
		{rep(OK, OK, OK), old, "ipvs", old.Error()},
		{rep(Missing, Skip, Missing), nil, "none", "xdp-native: xdp-native refused; xdp-generic: xdp-generic refused; ipvs: ipvs refused"},
	} {
		got, why := c.r.choose(c.tooOld)
		assert.Equal(t, c.want, got)
		assert.Equal(t, c.why, why)
	}
}

// TestRunOnInterface probes a given interface and checks that it is left as
// it was found: no XDP, no TCX program, and clsact only if it was there.
func TestRunOnInterface(t *testing.T) {
	requireRoot(t)
	for _, withClsact := range []bool{false, true} {
		t.Run(fmt.Sprintf("clsact before=%v", withClsact), func(t *testing.T) {
			ns := vethNS(t)
			if withClsact {
				require.NoError(t, ns.Do(func() error {
					return netlink.QdiscAdd(&netlink.GenericQdisc{
						QdiscAttrs: netlink.QdiscAttrs{LinkIndex: linkIndex(t, "p0"), Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
						QdiscType:  "clsact",
					})
				}))
			}
			var rep Report
			require.NoError(t, ns.Do(func() error {
				rep = Run(context.Background(), Options{Interface: "p0"})
				return nil
			}))
			for _, f := range []string{FeatureXDPNative, FeatureXDPGeneric, FeatureClsact} {
				assertStatus(t, rep, f, OK)
			}
			require.NoError(t, ns.Do(func() error {
				l, err := netlink.LinkByName("p0")
				require.NoError(t, err)
				assert.False(t, l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached, "XDP left attached")
				qdiscs, err := netlink.QdiscList(l)
				require.NoError(t, err)
				assert.Equal(t, withClsact, slices.ContainsFunc(qdiscs, func(q netlink.Qdisc) bool { return q.Type() == "clsact" }))
				if withClsact {
					filters, err := netlink.FilterList(l, netlink.HANDLE_MIN_INGRESS)
					require.NoError(t, err)
					assert.Empty(t, filters, "cls_bpf filter left behind")
				}
				if r, _ := rep.Get(FeatureTCX); r.Status == OK {
					q, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: ebpf.AttachTCXIngress})
					require.NoError(t, err)
					assert.Empty(t, q.Programs, "TCX program left attached")
				}
				return nil
			}))
		})
	}
}

// An interface that already runs XDP cannot take the probe's program: the
// XDP probes skip, and the program in place stays.
func TestRunInterfaceBusy(t *testing.T) {
	requireRoot(t)
	ns := vethNS(t)
	require.NoError(t, ns.Do(func() error {
		l, err := netlink.LinkByName("p0")
		require.NoError(t, err)
		prog, err := program(ebpf.XDP, 2)
		require.NoError(t, err)
		defer prog.Close()
		xl, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: l.Attrs().Index, Flags: link.XDPGenericMode})
		require.NoError(t, err)
		defer xl.Close()

		rep := Run(context.Background(), Options{Interface: "p0"})
		for _, f := range []string{FeatureXDPNative, FeatureXDPGeneric} {
			r := assertStatus(t, rep, f, Skip)
			assert.Contains(t, r.Reason, "p0 already runs XDP program")
		}
		l, err = netlink.LinkByName("p0")
		require.NoError(t, err)
		assert.True(t, l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached, "the interface's own XDP program was removed")
		return nil
	}))
}

func TestRunUnknownInterface(t *testing.T) {
	requireRoot(t)
	rep := Run(context.Background(), Options{Interface: "xlb-no-such-if"})
	for _, f := range []string{FeatureXDPNative, FeatureXDPGeneric, FeatureTCX, FeatureClsact} {
		r := assertStatus(t, rep, f, Skip)
		assert.Contains(t, r.Reason, "look up interface xlb-no-such-if")
	}
	assertStatus(t, rep, FeatureProgTestRun, OK)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("probing the kernel needs root")
	}
}

func assertStatus(t *testing.T, rep Report, feature string, want Status) Result {
	t.Helper()
	r, ok := rep.Get(feature)
	require.True(t, ok, "no result for %s", feature)
	assert.Equal(t, want, r.Status, "%s: %s", feature, r.Reason)
	if want != OK {
		assert.NotEmpty(t, r.Reason, feature)
	}
	return r
}

func features(rep Report) []string {
	var fs []string
	for _, r := range rep.Results {
		fs = append(fs, r.Feature)
	}
	return fs
}

// vethNS makes a namespace holding the veth pair p0-p1, both up.
func vethNS(t *testing.T) *testutil.NS {
	t.Helper()
	ns, err := testutil.NewNS("xlbprobe-" + testutil.Suffix())
	require.NoError(t, err)
	t.Cleanup(func() { _ = ns.Close() })
	require.NoError(t, ns.IP("link", "add", "p0", "type", "veth", "peer", "name", "p1"))
	require.NoError(t, ns.IP("link", "set", "p0", "up"))
	require.NoError(t, ns.IP("link", "set", "p1", "up"))
	return ns
}

func linkIndex(t *testing.T, name string) int {
	t.Helper()
	l, err := netlink.LinkByName(name)
	require.NoError(t, err)
	return l.Attrs().Index
}

func hostLinks(t *testing.T) []string {
	t.Helper()
	ls, err := nlretry.Dump(netlink.LinkList)
	require.NoError(t, err)
	var names []string
	for _, l := range ls {
		names = append(names, fmt.Sprintf("%d:%s", l.Attrs().Index, l.Attrs().Name))
	}
	return names
}

func runNetns(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		// Other packages' tests, run at the same time by go test ./...,
		// make and remove theirs (testutil names them xlb-...): a CI
		// run saw five of them go while the probe ran.
		if strings.HasPrefix(e.Name(), "xlb-") {
			continue
		}
		names = append(names, e.Name())
	}
	return names
}

// threadNetns returns the network namespace of each of the process's threads.
func threadNetns(t *testing.T) map[string]string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	require.NoError(t, err)
	m := map[string]string{}
	for _, p := range tasks {
		if ns, err := os.Readlink(p); err == nil {
			m[p] = ns
		}
	}
	return m
}

// assertNoThreadInNewNetns checks that no thread of the process is in a
// network namespace none of them was in before: a thread left in the
// probe's namespace would keep it, and its veths, alive.
func assertNoThreadInNewNetns(t *testing.T, before map[string]string) {
	t.Helper()
	known := map[string]bool{}
	for _, ns := range before {
		known[ns] = true
	}
	var stray []string
	for task, ns := range threadNetns(t) {
		if !known[ns] {
			stray = append(stray, task+" -> "+ns)
		}
	}
	assert.Empty(t, stray, "threads left in the probe's network namespace")
}

func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var ma, mi int
	_, err := fmt.Sscanf(KernelRelease(), "%d.%d", &ma, &mi)
	require.NoError(t, err, "parse kernel release %q", KernelRelease())
	return ma > major || ma == major && mi >= minor
}
