package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/probe"
)

func TestProbeJSON(t *testing.T) {
	t.Setenv(probe.DenyEnv, "xdp-native,xdp-turbo")
	code, out, errOut := runCmd("probe", "--json")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, `unknown feature "xdp-turbo"`)

	var rep probe.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.Equal(t, probe.KernelRelease(), rep.Kernel)
	require.Len(t, rep.Results, len(probe.Features))
	r, ok := rep.Get(probe.FeatureXDPNative)
	require.True(t, ok)
	assert.Equal(t, probe.Result{Feature: "xdp-native", Status: probe.Missing, Reason: "denied by override (XLB_PROBE_DENY)"}, r)
	for _, r := range rep.Results {
		assert.Contains(t, []probe.Status{probe.OK, probe.Missing, probe.Skip}, r.Status, r.Feature)
	}
	// Native XDP denied: auto would run generic XDP (on a kernel that
	// takes it), saying why it stepped down.
	if g, _ := rep.Get(probe.FeatureXDPGeneric); g.Status == probe.OK && probe.XDPDataPlane() == nil {
		assert.Equal(t, "xdp-generic", rep.Dataplane)
		assert.Equal(t, "xdp-native: denied by override (XLB_PROBE_DENY)", rep.DataplaneReason)
	}
}

func TestProbeTable(t *testing.T) {
	t.Setenv(probe.DenyEnv, "ipvs")
	code, out, errOut := runCmd("probe")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Kernel: "+probe.KernelRelease())
	assert.Regexp(t, `Feature +Status +Reason`, out)
	assert.Regexp(t, `ipvs +missing +denied by override \(XLB_PROBE_DENY\)`, out)
	assert.Regexp(t, `Data plane \(xlb run --dataplane auto\): (xdp-native|xdp-generic|none)\n`, out)
	for _, f := range probe.Features {
		assert.Contains(t, out, f)
	}
}

func TestProbeFlagErrors(t *testing.T) {
	code, _, errOut := runCmd("probe", "--bogus")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "unknown flag: --bogus")

	code, _, errOut = runCmd("probe", "eth0")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `unexpected argument "eth0"`)

	code, _, errOut = runCmd("probe", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, errOut, "--interface")
	assert.Contains(t, errOut, "XLB_PROBE_DENY")
}
