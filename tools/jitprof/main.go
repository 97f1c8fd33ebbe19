// Command jitprof puts perf's samples of xlb's XDP programs on source
// lines: it reads `perf script -F ip,sym` on its input and the map a
// benchmark wrote with XLB_JITMAP (jit.ksyms, jit.lines), and prints the
// samples per symbol, then the share of each source line among the
// samples that fell in xlb's programs. A sample lands on the instruction
// after the one that waited, so a line's share is the cost of what it
// waited for as often as its own.
//
//	mkdir -p /tmp/jm
//	cd pkg/dataplane/xdp && go test -c -o /tmp/xdp.test .
//	XLB_JITMAP=/tmp/jm perf record -e cpu-clock -a -o /tmp/perf.data -- \
//	    /tmp/xdp.test -test.run '^$' -test.bench 'BenchmarkDR/^nat-established-one-flow$' -test.benchtime 100000000x
//	perf script -i /tmp/perf.data -F ip,sym | go run ./tools/jitprof -map /tmp/jm
package main

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

type span struct{ start, n uint64 }

type line struct {
	addr uint64
	text string
}

func main() {
	dir := flag.String("map", "", "the directory XLB_JITMAP named")
	top := flag.Int("lines", 40, "source lines to print")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "jitprof: -map DIR is needed (the XLB_JITMAP of the run)")
		os.Exit(2)
	}
	if err := run(os.Stdin, os.Stdout, *dir, *top); err != nil {
		fmt.Fprintln(os.Stderr, "jitprof:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, dir string, top int) error {
	spans, err := readSpans(filepath.Join(dir, "jit.ksyms"))
	if err != nil {
		return err
	}
	lines, err := readLines(filepath.Join(dir, "jit.lines"))
	if err != nil {
		return err
	}
	bySym := map[string]int{}
	byLine := map[string]int{}
	ours, all := 0, 0
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		ip, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			continue
		}
		all++
		bySym[f[1]]++
		if !slices.ContainsFunc(spans, func(s span) bool { return ip >= s.start && ip < s.start+s.n }) {
			continue
		}
		ours++
		i, _ := slices.BinarySearchFunc(lines, ip, func(l line, ip uint64) int {
			return cmp.Compare(l.addr, ip+1)
		})
		text := "?"
		if i > 0 {
			text = lines[i-1].text
		}
		byLine[text]++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if ours == 0 {
		return fmt.Errorf("none of %d samples fell in the programs of %s: was it the same run?", all, dir)
	}
	fmt.Fprintf(out, "samples: %d, in xlb's programs %d\n", all, ours)
	for _, s := range sortedKeys(bySym)[:min(10, len(bySym))] {
		fmt.Fprintf(out, "%8d %s\n", bySym[s], s)
	}
	for _, l := range sortedKeys(byLine)[:min(top, len(byLine))] {
		fmt.Fprintf(out, "%5.1f%% %s\n", 100*float64(byLine[l])/float64(ours), l)
	}
	return nil
}

// sortedKeys is m's keys, the most samples first.
func sortedKeys(m map[string]int) []string {
	return slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b))
	})
}

func readSpans(path string) ([]span, error) {
	var spans []span
	err := eachLine(path, func(f string) error {
		var s span
		if _, err := fmt.Sscanf(f, "%x %d", &s.start, &s.n); err != nil {
			return err
		}
		spans = append(spans, s)
		return nil
	})
	return spans, err
}

func readLines(path string) ([]line, error) {
	var lines []line
	err := eachLine(path, func(f string) error {
		a, text, _ := strings.Cut(f, " ")
		addr, err := strconv.ParseUint(a, 16, 64)
		if err != nil {
			return err
		}
		lines = append(lines, line{addr, text})
		return nil
	})
	slices.SortFunc(lines, func(a, b line) int { return cmp.Compare(a.addr, b.addr) })
	return lines, err
}

func eachLine(path string, f func(string) error) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if err := f(l); err != nil {
			return fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
	}
	return nil
}
