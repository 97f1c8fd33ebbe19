package demo

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

// The demo's own code path, as `make demo` runs it.
func TestDemo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	testutil.RequireXDPKernel(t)
	var out bytes.Buffer
	res, err := Run(context.Background(), Options{Requests: 120, Weights: []int32{3, 2, 1}, Out: &out})
	t.Log(out.String())
	require.NoError(t, err)
	assert.Zero(t, res.Failed)
	assert.True(t, res.Matches)
	require.Len(t, res.Reals, 3)
	assert.Equal(t, []int{60, 40, 20}, []int{res.Reals[0].Expected, res.Reals[1].Expected, res.Reals[2].Expected})
	assert.EqualValues(t, 60, res.Reals[0].Counted)
	assert.Contains(t, out.String(), "every real got exactly what IPVS's wrr predicts")
	assert.Contains(t, out.String(), "cleaning up")
}

// Cancelled (Ctrl-C) before the first request: still cleans up.
func TestDemoCancelled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	testutil.RequireXDPKernel(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	_, err := Run(ctx, Options{Requests: 10, Out: &out})
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, out.String(), "cleaning up")
}
