// Command benchtab turns the output of `make bench` (go test -bench, one or
// more -count rounds) into the markdown table docs/benchmarks.md shows:
// per benchmark and metric, the best and the median of the rounds, each
// row from this one run. With -doc FILE it replaces the part of FILE
// between the "make bench: begin" and "make bench: end" markers.
//
//	go test -run '^$' -bench . -count 3 ./pkg/dataplane/xdp/ | tee bench.txt
//	go run ./tools/benchtab -doc docs/benchmarks.md -cmd 'make bench' < bench.txt
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// lower says, per metric unit, whether a smaller value is the better one.
var lower = map[string]bool{
	"ns/pkt": true, "baseline-ns/pkt": true, "x-baseline": true, "ms/flip": true, "apply-ms": true,
	"Ln-ms": true, "Lnc-ms": true, "apply-10k-ms": true, "one-weight-ms": true, "unchanged-ms": true,
	"update-real-down-ms": true, "update-real-back-ms": true, "go-heap-MB": true, "maps-MB": true,
	"ms/check": true, "table-bytes/flow": true, "stats-ms": true,
}

const (
	begin = "<!-- make bench: begin (tools/benchtab writes this part) -->"
	end   = "<!-- make bench: end -->"
)

func main() {
	doc := flag.String("doc", "", "markdown file whose make-bench part to replace (else print the table)")
	cmd := flag.String("cmd", "make bench", "the command that produced the input, for the table's heading")
	flag.Parse()
	rows, order, meta, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtab:", err)
		os.Exit(1)
	}
	if len(order) == 0 {
		fmt.Fprintln(os.Stderr, "benchtab: no benchmark results in the input")
		os.Exit(1)
	}
	table := render(rows, order, meta, *cmd)
	if *doc == "" {
		fmt.Print(table)
		return
	}
	b, err := os.ReadFile(*doc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtab:", err)
		os.Exit(1)
	}
	i, j := bytes.Index(b, []byte(begin)), bytes.Index(b, []byte(end))
	if i < 0 || j < i {
		fmt.Fprintf(os.Stderr, "benchtab: %s has no %q ... %q part\n", *doc, begin, end)
		os.Exit(1)
	}
	out := slices.Concat(b[:i+len(begin)], []byte("\n"), []byte(table), b[j:])
	if err := os.WriteFile(*doc, out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "benchtab:", err)
		os.Exit(1)
	}
}

type metric struct {
	unit   string
	values []float64
}

var line = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+(\d+)\s+(.*)$`)

// parse reads go test -bench output: per benchmark (in first-seen order),
// its metrics' values over the rounds, and the header lines (cpu, pkg).
func parse(r io.Reader) (map[string][]*metric, []string, map[string]string, error) {
	rows := map[string][]*metric{}
	var order []string
	meta := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		t := sc.Text()
		for _, k := range []string{"cpu: ", "goos: ", "goarch: "} {
			if strings.HasPrefix(t, k) {
				meta[strings.TrimSuffix(k, ": ")] = strings.TrimSpace(strings.TrimPrefix(t, k))
			}
		}
		m := line.FindStringSubmatch(t)
		if m == nil {
			continue
		}
		name := m[1]
		f := strings.Fields(m[4])
		if _, ok := rows[name]; !ok {
			order = append(order, name)
		}
		for k := 0; k+1 < len(f); k += 2 {
			v, err := strconv.ParseFloat(f[k], 64)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("%s: %q is not a number", name, f[k])
			}
			unit := f[k+1]
			if unit == "ns/op" && v == 0 {
				continue // the benchmarks report their own metrics
			}
			var mt *metric
			for _, x := range rows[name] {
				if x.unit == unit {
					mt = x
				}
			}
			if mt == nil {
				mt = &metric{unit: unit}
				rows[name] = append(rows[name], mt)
			}
			mt.values = append(mt.values, v)
		}
	}
	return rows, order, meta, sc.Err()
}

func render(rows map[string][]*metric, order []string, meta map[string]string, cmd string) string {
	var b strings.Builder
	rev, _ := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	kernel, _ := exec.Command("uname", "-r").Output()
	fmt.Fprintf(&b, "\nOne run of `%s` on %s: %s, %d CPUs, kernel %s, %s, commit %s. Each row is\n",
		cmd, time.Now().UTC().Format("2006-01-02"), meta["cpu"], runtime.NumCPU(), strings.TrimSpace(string(kernel)),
		runtime.Version(), strings.TrimSpace(string(rev)))
	b.WriteString("one benchmark's metric over the rounds of this run (best, median, all); ratios are to\n")
	b.WriteString("a baseline measured in the same round. Every case asserts its verdict and that the data\n")
	b.WriteString("plane's counters account for its packets.\n\n")
	b.WriteString("| benchmark | metric | best | median | rounds |\n|---|---|---|---|---|\n")
	for _, name := range order {
		for _, m := range rows[name] {
			vs := slices.Clone(m.values)
			slices.Sort(vs)
			best := vs[0]
			if !lower[m.unit] {
				best = vs[len(vs)-1]
			}
			all := make([]string, len(m.values))
			for i, v := range m.values {
				all[i] = num(v)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", strings.TrimPrefix(name, "Benchmark"), m.unit, num(best),
				num(vs[len(vs)/2]), strings.Join(all, " / "))
		}
	}
	b.WriteString("\n")
	return b.String()
}

func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
