package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// With no daemon, xlbadm says so, as ipvsadm says IPVS is missing.
func TestNoDaemon(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"-Ln"}, nil, &out, &errOut, filepath.Join(t.TempDir(), "none.sock"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut.String(), "xlbadm: the xlb daemon is not running")
	assert.Empty(t, out.String())
}
