package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/daemon"
	"github.com/xlbproject/xlb/pkg/director"
)

// runCheck validates a configuration like `keepalived -t`.
func runCheck(e env, args []string) int {
	fs := pflag.NewFlagSet("xlb check", pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	file := fs.StringP("config", "f", "/etc/keepalived/keepalived.conf", "keepalived.conf to check")
	dp := fs.String("dataplane", "auto", "the data plane to check for: auto (as xlb run chooses: XDP, else IPVS for what XDP cannot do), xdp or ipvs")
	var sizes daemon.Options
	sizeFlags(fs, &sizes)
	strictFlags(fs, &sizes.Strict, &sizes.ConfigID)
	peers := peerFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, `usage: xlb check [-f FILE] [--dataplane auto|xdp|ipvs] [--strict] [--config-id ID] [--peer FILE]...

Checks a keepalived.conf as xlb run would load it, like keepalived -t: prints
warnings and errors with file:line, and the data plane xlb run would use for
it; exits 0 when xlb can run it, 1 when it cannot, 2 on a usage error.

A warning is something keepalived also logs and carries on from (an unknown
keyword, a value it corrects: the warning says what is done with it), or,
marked "unlike keepalived", something keepalived acts on that xlb ignores.
--strict makes every warning an error.

--peer FILE (repeatable; FILE@ID for a shared file read under config id ID)
adds the other directors of the VRRP pair or group: the elections of the
virtual routers they share are worked through for every combination of
tracker failures and directors down, as keepalived 2.2.7 holds them; exit 1
also when a combination leaves no MASTER while a director could be one, two
MASTERs, or a MASTER whose own tracker failed keeping the VIP.

flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(e.stderr, "xlb check: %v\n", err)
		return 2
	}
	if *dp != "auto" {
		if _, ok := daemon.CapsFor(*dp, sizes); !ok {
			fmt.Fprintf(e.stderr, "xlb check: --dataplane: %q is not auto, xdp or ipvs\n", *dp)
			return 2
		}
	}
	// Read whole, so that a file too big for the data plane is told its
	// full size by director.Validate below.
	cfg, err := daemon.ReadConfig(*file, daemon.ReadOptions{Strict: sizes.Strict, ConfigID: sizes.ConfigID,
		SloppyTCP: sizes.SloppyTCP, SloppySCTP: sizes.SloppySCTP, BGPConfig: sizes.BGPConfig, BGPVIPs: sizes.BGPVIPs})
	if err != nil {
		printErrors(e, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		if w.Unlike {
			fmt.Fprintf(e.stderr, "warning (unlike keepalived): %s\n", w.String())
		} else {
			fmt.Fprintf(e.stderr, "warning: %s\n", w.String())
		}
	}
	chosen, why := *dp, ""
	if chosen == "auto" {
		// As xlb run --dataplane auto: XDP unless the file needs IPVS; the
		// host's own probes (xlb probe) may step down further.
		chosen = "xdp"
		if err := daemon.NeedsIPVS(cfg, sizes); err != nil {
			chosen, why = "ipvs", err.Error()
		}
	}
	caps, _ := daemon.CapsFor(chosen, sizes)
	if err := director.Validate(cfg, caps); err != nil {
		printErrors(e, err)
		return 1
	}
	fmt.Fprintf(e.stdout, "%s: OK: %d virtual servers, %d vrrp instances, %d warnings\n",
		*file, len(cfg.VirtualServers), len(cfg.Instances), len(cfg.Warnings))
	switch {
	case *dp != "auto":
		fmt.Fprintf(e.stdout, "data plane: %s (--dataplane %s)\n", chosen, *dp)
	case why != "":
		fmt.Fprintf(e.stdout, "data plane: ipvs: xlb run --dataplane auto runs this file on IPVS, because XDP cannot: %s\n", strings.ReplaceAll(why, "\n", "; "))
	default:
		ipvsCaps, _ := daemon.CapsFor("ipvs", sizes)
		if err := director.Validate(cfg, ipvsCaps); err != nil {
			// FULLNAT, say: the kernel's IPVS cannot take over.
			first, _, _ := strings.Cut(err.Error(), "\n")
			fmt.Fprintf(e.stdout, "data plane: xdp: xlb run --dataplane auto runs this file on XDP only; where the host cannot run XDP (xlb probe) it refuses the file, as IPVS cannot serve it: %s\n", first)
		} else {
			fmt.Fprintln(e.stdout, "data plane: xdp: xlb run --dataplane auto runs this file on XDP where the host allows it (xlb probe), else IPVS")
		}
	}
	return peers.run(e, *file, sizes.ConfigID, cfg)
}

// strictFlags adds --strict and --config-id, which xlb run and xlb check
// share.
func strictFlags(fs *pflag.FlagSet, strict *bool, configID *string) {
	fs.BoolVar(strict, "strict", false, "refuse a configuration with warnings: every warning is an error")
	fs.StringVar(configID, "config-id", "", "keepalived's config id (its -i): lines \"@ID ...\" are read only with this id, \"@^ID ...\" only without it (default: the host name up to its first dot)")
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
