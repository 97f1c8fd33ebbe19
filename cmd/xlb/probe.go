package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/xlbproject/xlb/pkg/probe"
)

// runProbe prints which data-plane features the running kernel offers.
func runProbe(e env, args []string) int {
	fs := pflag.NewFlagSet("xlb probe", pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	iface := fs.String("interface", "", "probe attaching on this interface (default: a veth pair in a temporary network namespace)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: xlb probe [--interface IF] [--json]\n\n"+
			"Probes the kernel for what the data plane can use: %s.\n"+
			"Each probe loads and attaches a trivial program and removes it again.\n"+
			"%s=feature,... reports the named features as missing (to exercise fallbacks).\n\nflags:\n",
			strings.Join(probe.Features, ", "), probe.DenyEnv)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(e.stderr, "xlb probe: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "xlb probe: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	deny := probe.DenyFromEnv()
	for _, f := range deny {
		if !slices.Contains(probe.Features, f) {
			fmt.Fprintf(e.stderr, "xlb probe: %s: unknown feature %q (known: %s)\n", probe.DenyEnv, f, strings.Join(probe.Features, ", "))
		}
	}
	rep := probe.Run(context.Background(), probe.Options{Interface: *iface, Deny: deny})
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return 0
	}
	printProbe(e.stdout, rep)
	return 0
}

func printProbe(w io.Writer, rep probe.Report) {
	fmt.Fprintf(w, "Kernel: %s\n\n", rep.Kernel)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Feature\tStatus\tReason")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Feature, r.Status, r.Reason)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nData plane (xlb run --dataplane auto): %s\n", rep.Dataplane)
	if rep.DataplaneReason != "" {
		fmt.Fprintf(w, "  stepped down because: %s\n", rep.DataplaneReason)
	}
}
