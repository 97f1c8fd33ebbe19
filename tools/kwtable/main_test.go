package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestREADMEUpToDate fails when README.md's keepalived.conf coverage
// tables are not what the parser and the data planes' Caps say now: a
// change to either needs `make readme` (go run ./tools/kwtable -w
// README.md) in the same commit.
func TestREADMEUpToDate(t *testing.T) {
	doc, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	body, err := generate()
	require.NoError(t, err)
	want, err := replace(doc, body)
	require.NoError(t, err)
	if !bytes.Equal(doc, want) {
		t.Errorf("README.md's keepalived.conf coverage tables are stale: run `make readme` (go run ./tools/kwtable -w README.md). Lines that differ:\n%s",
			lineDiff(string(doc), string(want)))
	}
}

// lineDiff lists the lines only one of a and b has, marked - and +.
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ina, inb := in(a), in(b)
	var out strings.Builder
	for _, l := range strings.Split(a, "\n") {
		if !inb[l] {
			out.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ina[l] {
			out.WriteString("+ " + l + "\n")
		}
	}
	return out.String()
}

func TestReplace(t *testing.T) {
	doc := []byte("a\n" + startMarker + "\nold\n" + endMarker + "\nb\n")
	out, err := replace(doc, "new\n")
	require.NoError(t, err)
	assert.Equal(t, "a\n"+startMarker+"\nnew\n"+endMarker+"\nb\n", string(out))
	again, err := replace(out, "new\n")
	require.NoError(t, err)
	assert.Equal(t, out, again)

	for _, bad := range []string{"a\n", endMarker + "\n" + startMarker + "\n", startMarker + startMarker + endMarker} {
		_, err := replace([]byte(bad), "x\n")
		assert.Error(t, err, bad)
	}
}

// TestVerdicts: what the tables say for keywords whose fate is known.
func TestVerdicts(t *testing.T) {
	body, err := generate()
	require.NoError(t, err)
	for _, line := range []string{
		"| refuses | runs | ops |",
		"| lvs_method NAT, TUN, DR | runs | runs |",
		"| lvs_method TUN type gue port N, type gre (nocsum) | runs | runs |",
		"| lvs_method TUN type gue/gre with csum or remcsum | refuses | runs |",
		"| protocol TCP, UDP | runs | runs |",
		"| virtual_server fwmark N | refuses | runs |",
	} {
		assert.Contains(t, body, line)
	}
	assert.Regexp(t, `\| ignored, warns \| ignored, warns \| [^|]*\bpersistence_engine\b`, body)
	assert.Regexp(t, `\| runs \| runs \| [^|]*\bTCP_CHECK\b`, body)
}
