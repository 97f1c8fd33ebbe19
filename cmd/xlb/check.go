package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/daemon"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/director"
)

// runCheck validates a configuration like `keepalived -t`.
func runCheck(e env, args []string) int {
	fs := pflag.NewFlagSet("xlb check", pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	file := fs.StringP("config", "f", "/etc/keepalived/keepalived.conf", "keepalived.conf to check")
	dp := fs.String("dataplane", "xdp", "the data plane to check for: xdp or ipvs (IPVS also has TUN and IPv6)")
	var sizes daemon.Options
	sizeFlags(fs, &sizes)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: xlb check [-f FILE] [--dataplane xdp|ipvs]\n\nChecks a keepalived.conf as xlb run would load it, like keepalived -t: prints\nwarnings and errors with file:line, exits 0 when xlb can run it.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(e.stderr, "xlb check: %v\n", err)
		return 2
	}
	caps, ok := daemon.CapsFor(*dp, sizes)
	if !ok {
		fmt.Fprintf(e.stderr, "xlb check: --dataplane: %q is not xdp or ipvs\n", *dp)
		return 2
	}
	// Read whole, so that a file too big for the data plane is told its
	// full size by director.Validate below.
	cfg, err := daemon.ReadConfig(*file, dataplane.Caps{}, false)
	if err != nil {
		printErrors(e, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w.String())
	}
	if err := director.Validate(cfg, caps); err != nil {
		printErrors(e, err)
		return 1
	}
	fmt.Fprintf(e.stdout, "%s: OK: %d virtual servers, %d vrrp instances, %d warnings\n",
		*file, len(cfg.VirtualServers), len(cfg.Instances), len(cfg.Warnings))
	return 0
}

// printErrors prints one error per line.
func printErrors(e env, err error) {
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, pe := range list {
			fmt.Fprintf(e.stderr, "error: %s\n", pe.Error())
		}
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e2 := range j.Unwrap() {
			fmt.Fprintf(e.stderr, "error: %s\n", e2.Error())
		}
		return
	}
	fmt.Fprintf(e.stderr, "error: %s\n", err.Error())
}
