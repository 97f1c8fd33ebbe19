package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The committed pages are what the programs say now (make man rewrites
// them), and groff renders each without a warning, as man -l would.
func TestPagesFresh(t *testing.T) {
	pages, err := Pages("")
	require.NoError(t, err)
	require.Len(t, pages, 3)
	for name, text := range pages {
		have, err := os.ReadFile(filepath.Join("../../docs/man", name))
		require.NoError(t, err, "docs/man/%s: run make man", name)
		assert.Equal(t, text, string(have), "docs/man/%s is stale: run make man", name)

		groff, err := exec.LookPath("groff")
		require.NoError(t, err, "groff renders the pages (apt-get install groff-base; make test installs it)")
		cmd := exec.Command(groff, "-ww", "-z", "-man")
		cmd.Stdin = strings.NewReader(text)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Empty(t, string(out), "groff warns about %s", name)
	}
}
