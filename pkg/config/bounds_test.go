package config

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What is not a configuration is refused at once, cheaply, and the
// messages stay short.
func TestBoundedInputs(t *testing.T) {
	dir := t.TempDir()

	// A FIFO in the file's place (a reload would have waited on it for
	// ever), and one included.
	fifo := filepath.Join(dir, "fifo.conf")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	done := make(chan error, 1)
	go func() { _, err := Parse(fifo); done <- err }()
	select {
	case err := <-done:
		assert.ErrorContains(t, err, "is not a regular file")
	case <-time.After(5 * time.Second):
		t.Fatal("Parse waited on a FIFO")
	}
	incl := filepath.Join(dir, "incl.conf")
	require.NoError(t, os.WriteFile(incl, []byte("includer "+fifo+"\n"), 0o644))
	_, err := Parse(incl)
	assert.ErrorContains(t, err, "skipping an included file that is not a regular non-executable file")

	// A sparse gigabyte: refused by its size, not read.
	huge := filepath.Join(dir, "huge.conf")
	f, err := os.Create(huge)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(1<<30))
	f.Close()
	_, err = Parse(huge)
	assert.ErrorContains(t, err, "is 1073741824 bytes; a configuration file may have 67108864")

	// A word of megabytes is quoted by its start.
	word := filepath.Join(dir, "word.conf")
	require.NoError(t, os.WriteFile(word, []byte(strings.Repeat("x", 3<<20)+"\n"), 0o644))
	cfg, err := Parse(word)
	require.NoError(t, err)
	require.Len(t, cfg.Warnings, 1, "an unknown top-level keyword, ignored")
	assert.Less(t, len(cfg.Warnings[0].String()), 300, "the message quotes a short excerpt")
	assert.Contains(t, cfg.Warnings[0].String(), "... (3145728 bytes)")

	// Lines of garbage at the top level: one error, after the first
	// thousand, instead of a tree of a million.
	var b strings.Builder
	for range 200000 {
		b.WriteString("a\n")
	}
	garbage := filepath.Join(dir, "garbage.conf")
	require.NoError(t, os.WriteFile(garbage, []byte(b.String()), 0o644))
	_, err = Parse(garbage)
	var list ErrorList
	require.ErrorAs(t, err, &list)
	require.Len(t, list, 1)
	assert.Equal(t, `garbage.conf:1001: more than 1000 unknown top-level keywords: not a keepalived configuration; stopped at "a"`,
		strings.TrimPrefix(list[0].Error(), dir+"/"))

	// Errors stop the parse at 100.
	b.Reset()
	for range 5000 {
		b.WriteString("\"unterminated\n")
	}
	_, err = ParseBytes("quotes.conf", []byte(b.String()))
	require.ErrorAs(t, err, &list)
	assert.Len(t, list, maxErrors+1)
	assert.Equal(t, "quotes.conf:100: 100 errors: stopped reading here", list[maxErrors].Error())

	// Warnings are kept up to 1000, and say so.
	b.Reset()
	for range 5000 {
		b.WriteString("}\n")
	}
	cfg, err = ParseBytes("braces.conf", []byte(b.String()))
	require.NoError(t, err, "keepalived ignores an extra '}'")
	assert.Len(t, cfg.Warnings, maxWarnings+1)
	assert.Equal(t, "braces.conf:1001: more than 1000 warnings: no more are kept", cfg.Warnings[maxWarnings].String())
}

// A configuration with more servers than the data plane holds is refused
// where the first one too many is read, before the rest of the file has
// cost memory: 100,000 virtual servers against a limit of 64 cost what 64
// do, where the whole parse costs hundreds of megabytes.
func TestLimitsStopTheRead(t *testing.T) {
	var b strings.Builder
	for i := range 100_000 {
		fmt.Fprintf(&b, "virtual_server 10.%d.%d.%d 80 {\n    lb_kind DR\n    protocol TCP\n    real_server 10.77.0.11 80 {\n        weight 1\n    }\n}\n",
			100+i>>16, i>>8&255, i&255)
	}
	path := filepath.Join(t.TempDir(), "many.conf")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	size := uint64(b.Len())
	b = strings.Builder{}

	alloc := func(lim Limits) (uint64, error) {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		_, err := ParseWith(path, Options{Limits: lim})
		runtime.ReadMemStats(&m1)
		return m1.TotalAlloc - m0.TotalAlloc, err
	}
	limited, err := alloc(Limits{VirtualServers: 64, VirtualFlag: "--max-services", Holder: "the XDP data plane"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "many.conf:449: the configuration has more than 64 virtual servers; the XDP data plane holds 64 (--max-services); stopped reading at \"virtual_server\"")
	_, err = ParseWith(path, Options{Limits: Limits{RealServers: 10, RealFlag: "--max-reals", Holder: "the XDP data plane"}})
	assert.ErrorContains(t, err, "many.conf:74: the configuration has more than 10 real servers (counted per virtual server)")
	whole, err := alloc(Limits{})
	require.NoError(t, err)
	t.Logf("a %d MB file: %d MB allocated to parse it whole, %d MB to refuse it at 64", size>>20, whole>>20, limited>>20)
	assert.Less(t, limited, 3*size, "the file is read (and copied once), not lexed")
	assert.Greater(t, whole, 10*limited)
}

// The parser reads each top-level block while the lexer reads on, but
// the problems come out as when the whole file was read first: the
// lexer's, then the blocks with no keyword, then the parser's (the
// top-level blocks', then what finishing them finds).
func TestProblemsInReadingOrder(t *testing.T) {
	src := vs1(" no_such_keyword 1") + "}\n{\n}\n" + vs1(" real_server\n another_unknown")
	_, p := parseProblems(memSource{}, "keepalived.conf", src, Options{ConfigID: "testhost"})
	var got []string
	for _, e := range p.all {
		got = append(got, e.Error())
	}
	assert.Equal(t, []string{
		`keepalived.conf:7: closes no block: "}"`,
		`keepalived.conf:8: block with no keyword: "{"`,
		`keepalived.conf:5: unknown keyword in virtual_server: "no_such_keyword"`,
		`keepalived.conf:14: missing "{" after "real_server"`,
		`keepalived.conf:15: unknown keyword in virtual_server: "another_unknown"`,
		`keepalived.conf:1: virtual server has no real_server; ignoring "10.0.0.1"`,
		`keepalived.conf:10: virtual server has no real_server; ignoring "10.0.0.1"`,
	}, got)
}

// What the parser finds while held, released after what the lexer
// found, is what finding it all in that order gives, for any numbers of
// errors and warnings on either side of the bounds.
func TestHeldProblemsReleased(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	event := func(i int) heldProblem {
		if r.Intn(4) == 0 {
			return heldProblem{err: &ParseError{File: "f", Line: i, Msg: "error"}}
		}
		return heldProblem{warn: Warning{File: "f", Line: i, Msg: "warning"}}
	}
	feed := func(p *problems, e heldProblem) {
		if e.err != nil {
			p.add(e.err)
		} else {
			p.warn(e.warn)
		}
	}
	for range 300 {
		direct, released, held := &problems{}, &problems{}, holding()
		for i := range r.Intn(3 * maxWarnings / 2) {
			e := event(i)
			feed(direct, e)
			feed(released, e)
		}
		for i := range r.Intn(4 * maxWarnings) {
			e := event(100000 + i)
			feed(direct, e)
			feed(held, e)
		}
		released.release(held)
		require.Equal(t, direct.errs, released.errs)
		require.Equal(t, direct.warns, released.warns)
		require.Equal(t, direct.all, released.all)
	}
}
