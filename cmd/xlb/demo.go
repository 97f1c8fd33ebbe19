package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/xlbproject/xlb/internal/demo"
	"github.com/xlbproject/xlb/pkg/dataplane"
)

func runDemo(e env, args []string) int {
	fs := pflag.NewFlagSet("xlb demo", pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	requests := fs.IntP("requests", "n", 300, "HTTP requests to send, each on a new connection")
	weights := fs.String("weights", "3,2,1", "wrr weights of the reals, one real per weight")
	mode := fs.String("mode", "auto", "XDP attach mode: auto (native, else generic), native, generic")
	verbose := fs.BoolP("verbose", "v", false, "log what the data plane does")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: xlb demo [flags]\n\nBuilds network namespaces (a client, a director, real HTTP servers), attaches\nxlb to the director in DR mode with wrr, sends HTTP requests through the VIP,\nprints each real's share next to what the weights predict, and removes\neverything it made (also on Ctrl-C). Needs root.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(e.stderr, "xlb demo: %v\n", err)
		return 2
	}
	o := demo.Options{Requests: *requests, Out: e.stdout}
	for _, w := range strings.Split(*weights, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(w), 10, 32)
		if err != nil || n < 0 {
			fmt.Fprintf(e.stderr, "xlb demo: --weights: %q is not a weight (a whole number >= 0)\n", w)
			return 2
		}
		o.Weights = append(o.Weights, int32(n))
	}
	if len(o.Weights) < 1 || len(o.Weights) > 20 {
		fmt.Fprintln(e.stderr, "xlb demo: --weights: give 1 to 20 weights")
		return 2
	}
	switch *mode {
	case "auto":
	case "native":
		o.Mode = dataplane.XDPNative
	case "generic":
		o.Mode = dataplane.XDPGeneric
	default:
		fmt.Fprintf(e.stderr, "xlb demo: --mode: %q is not auto, native or generic\n", *mode)
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	o.Log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := demo.Run(ctx, o)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(e.stderr, "xlb demo: interrupted; everything it made is removed")
			return 130
		}
		fmt.Fprintf(e.stderr, "xlb demo: %v\n", err)
		return 1
	}
	if !res.Matches {
		return 1
	}
	return 0
}
