package xdp

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

// On a kernel below 5.15 the XDP data plane refuses to load, saying why
// and what to do, and leaves nothing pinned (xlb run then steps down to
// IPVS).
func TestOldKernelRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs")
	}
	if testutil.XDPKernelMissing() == "" {
		t.Skip("this kernel runs the XDP data plane: there is no refusal to check here (the 5.10 VM checks it)")
	}
	pin := "/sys/fs/bpf/xlb-old-" + testutil.Suffix()
	_, err := Open(Config{PinDir: pin})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "older than the XDP data plane needs (5.15")
	assert.Contains(t, err.Error(), "--dataplane ipvs")
	_, statErr := os.Stat(pin)
	assert.True(t, os.IsNotExist(statErr), "nothing pinned is left behind")
}
