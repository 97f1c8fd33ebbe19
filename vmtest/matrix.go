package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/xlbproject/xlb/pkg/probe"
)

// row is one line of the matrix: a kernel's saved result and probe report.
type row struct {
	name   string
	result *runResult    // nil: never run
	probe  *probe.Report // nil: the guest died before probing
}

func loadRow(outDir, name string) row {
	r := row{name: name}
	if b, err := os.ReadFile(filepath.Join(outDir, name, "result.json")); err == nil {
		var res runResult
		if json.Unmarshal(b, &res) == nil {
			r.result = &res
		}
	}
	if b, err := os.ReadFile(filepath.Join(outDir, name, "probe.json")); err == nil {
		var rep probe.Report
		if json.Unmarshal(b, &rep) == nil {
			r.probe = &rep
		}
	}
	return r
}

// printMatrix prints kernel x feature with ok/missing/skip, the test
// verdict per kernel, and then the reasons behind every cell that is not ok
// and every run that did not pass.
func printMatrix(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "kernel\trelease\t%s\tauto\ttests\n", strings.Join(probe.Features, "\t"))
	for _, r := range rows {
		release := "?"
		switch {
		case r.probe != nil:
			release = r.probe.Kernel
		case r.result != nil && r.result.Release != "":
			release = r.result.Release
		}
		cells := []string{r.name, release}
		for _, f := range probe.Features {
			cell := "?"
			if r.probe != nil {
				if res, ok := r.probe.Get(f); ok {
					cell = string(res.Status)
				}
			}
			cells = append(cells, cell)
		}
		auto := "?"
		if r.probe != nil && r.probe.Dataplane != "" {
			auto = r.probe.Dataplane
		}
		tests := "?"
		if r.result != nil {
			tests = r.result.Status
			if n := skipCount(r.result); n > 0 {
				tests += fmt.Sprintf(" (%d skipped)", n)
			}
		}
		fmt.Fprintln(tw, strings.Join(append(cells, auto, tests), "\t"))
	}
	tw.Flush()

	var reasons, tests, skips []string
	for _, r := range rows {
		if r.probe != nil && r.probe.DataplaneReason != "" {
			reasons = append(reasons, fmt.Sprintf("%-5s auto: %s: %s", r.name, r.probe.Dataplane, r.probe.DataplaneReason))
		}
		if r.result != nil {
			for _, s := range skipLines(r.result) {
				skips = append(skips, fmt.Sprintf("%-5s %s", r.name, s))
			}
		}
		if r.probe == nil && r.result != nil {
			reasons = append(reasons, fmt.Sprintf("%-5s all: no probe report (%s)", r.name, orDefault(r.result.Reason, "see console.log")))
		}
		if r.probe != nil {
			for _, res := range r.probe.Results {
				if res.Status != probe.OK {
					reasons = append(reasons, fmt.Sprintf("%-5s %s: %s", r.name, res.Feature, res.Reason))
				}
			}
		}
		if r.result == nil {
			continue
		}
		if len(r.result.MissingModules) > 0 {
			reasons = append(reasons, fmt.Sprintf("%-5s modules: not in this kernel: %s", r.name, strings.Join(r.result.MissingModules, " ")))
		}
		switch r.result.Status {
		case "error":
			tests = append(tests, fmt.Sprintf("%-5s error: %s", r.name, r.result.Reason))
		case "fail":
			for _, p := range r.result.Packages {
				if p.RC == 0 {
					continue
				}
				detail := strings.Join(leaves(p.Fail), ", ")
				if p.Note != "" {
					detail = strings.TrimSpace(detail + " " + p.Note)
				}
				if p.RC < 0 {
					detail = strings.TrimSpace(detail + " (did not finish)")
				}
				tests = append(tests, fmt.Sprintf("%-5s fail: %s: %s", r.name, p.Name, orDefault(detail, fmt.Sprintf("exit status %d", p.RC))))
			}
		}
	}
	if len(reasons) > 0 {
		fmt.Fprintln(w, "\nreasons:")
		for _, s := range reasons {
			fmt.Fprintln(w, "  "+s)
		}
	}
	if len(skips) > 0 {
		fmt.Fprintln(w, "\nskipped tests, by reason:")
		for _, s := range skips {
			fmt.Fprintln(w, "  "+s)
		}
	}
	if len(tests) > 0 {
		fmt.Fprintln(w, "\ntest failures:")
		for _, s := range tests {
			fmt.Fprintln(w, "  "+s)
		}
	}
}

// printSummary prints one kernel's packages: verdict, counts, time.
func printSummary(w io.Writer, res *runResult) {
	fmt.Fprintf(w, "\n%s (%s): %s", res.Kernel, orDefault(res.Release, "?"), res.Status)
	if res.Reason != "" {
		fmt.Fprintf(w, ": %s", res.Reason)
	}
	if res.WallSeconds > 0 {
		fmt.Fprintf(w, "; %s, boot %.1fs, VM %.1fs", res.Accel, res.BootSeconds, res.WallSeconds)
	}
	fmt.Fprintln(w)
	for _, p := range res.Packages {
		verdict := "ok  "
		if p.RC != 0 {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "  %s %-28s %6.1fs  %d passed, %d failed, %d skipped (subtests included)\n", verdict, p.Name, p.Seconds, len(p.Pass), len(p.Fail), len(p.Skip))
		for _, f := range leaves(p.Fail) {
			fmt.Fprintf(w, "         --- FAIL: %s\n", f)
		}
		if p.Note != "" {
			fmt.Fprintf(w, "         %s\n", p.Note)
		}
	}
}

// leaves drops tests that failed only because a subtest did.
func leaves(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.ContainsFunc(names, func(m string) bool { return strings.HasPrefix(m, n+"/") }) {
			out = append(out, n)
		}
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func skipCount(res *runResult) int {
	n := 0
	for _, p := range res.Packages {
		n += len(p.Skip)
	}
	return n
}

// skipLines groups a run's skipped tests by their t.Skip message: one line
// per reason, with how many and which (the first few).
func skipLines(res *runResult) []string {
	var order []string
	byWhy := map[string][]string{}
	for _, p := range res.Packages {
		for _, name := range p.Skip {
			why := orDefault(p.SkipWhy[name], "no reason given")
			if byWhy[why] == nil {
				order = append(order, why)
			}
			byWhy[why] = append(byWhy[why], name)
		}
	}
	var out []string
	for _, why := range order {
		names := byWhy[why]
		list := strings.Join(names[:min(3, len(names))], ", ")
		if len(names) > 3 {
			list += fmt.Sprintf(", and %d more", len(names)-3)
		}
		out = append(out, fmt.Sprintf("%d: %s (%s)", len(names), why, list))
	}
	return out
}
