package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/daemon"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/dataplane/ipvs"
	"github.com/xlbproject/xlb/pkg/dataplane/xdp"
)

// runOptions parses xlb run's flags into the daemon's Options.
func runOptions(e env, args []string) (daemon.Options, int) {
	var o daemon.Options
	var noConfig bool
	var mode, logLevel, logFormat string
	fs := pflag.NewFlagSet("xlb run", pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVarP(&o.ConfigFile, "config", "f", "/etc/keepalived/keepalived.conf", "keepalived.conf to run")
	fs.StringArrayVarP(&o.Interfaces, "interface", "i", nil, "interface where VIP traffic arrives (repeatable); default: the vrrp_instance interfaces")
	fs.StringVar(&o.PinDir, "pin-dir", xdp.DefaultPinDir, "bpffs directory for the pinned maps and links")
	fs.StringVar(&o.Socket, "socket", control.DefaultSocket, "control socket")
	fs.StringVar(&o.Dataplane, "dataplane", "auto", "auto (probe: native XDP, generic XDP, else IPVS), xdp or ipvs")
	fs.StringVar(&mode, "xdp-mode", "auto", "XDP attach mode: auto (native, else generic), native, generic")
	fs.StringVar(&o.IPVSState, "ipvs-state", ipvs.DefaultStateFile, "the IPVS data plane's record of the services it made")
	fs.StringVar(&o.XlbadmState, "xlbadm-state", daemon.DefaultXlbadmState, "where the services made with xlbadm are kept across restarts (ipvsadm -S form)")
	fs.BoolVar(&o.KeepDataplane, "keep-dataplane", false, "on SIGTERM, leave the data plane forwarding (pinned) for the next xlb to take over")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&logFormat, "log-format", "text", "text or json")
	sizeFlags(fs, &o)
	defenceFlags(fs, &o.Defence)
	fs.DurationVar(&o.BGPDrain, "bgp-drain", 5*time.Second, "on SIGTERM with --bgp-config: withdraw the VIPs, go on forwarding this long (connections the routers move away keep going), then detach")
	fs.DurationVar(&o.SyncWait, "sync-wait", daemon.DefaultSyncWait, "with lvs_sync_daemon on the XDP data plane: hold VRRP preemption at most this long for the peer's bulk dump of its connections")
	fs.StringVar(&o.Metrics, "metrics", "", "serve Prometheus metrics on this address (e.g. :9610), at /metrics")
	// The sizes are kept across restarts: a pinned data plane of other
	// sizes cannot be taken over.
	strictFlags(fs, &o.Strict, &o.ConfigID)
	fs.BoolVar(&noConfig, "no-config", false, "start with no keepalived.conf: services come from xlbadm (ipvsadm commands) only")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: xlb run [-f FILE] [--interface IF]... [flags]\n\nRuns the director: reads keepalived.conf, opens the data plane (XDP, or IPVS where\nXDP cannot run), applies\nevery virtual_server, runs the health checks and applies their results.\nSIGHUP reloads the file (an invalid one changes nothing); SIGTERM detaches.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return o, 0
		}
		fmt.Fprintf(e.stderr, "xlb run: %v\n", err)
		return o, 2
	}
	if noConfig {
		o.ConfigFile = ""
	}
	// Modes not given leave an IPVS host's sysctls as they are.
	o.Defence.Keep = !fs.Changed("drop-entry") && !fs.Changed("drop-packet") && !fs.Changed("secure-tcp")
	for _, c := range []struct {
		flag string
		v    int
	}{{"drop-entry", o.Defence.DropEntry}, {"drop-packet", o.Defence.DropPacket}, {"secure-tcp", o.Defence.SecureTCP}} {
		if c.v < 0 || c.v > 3 {
			fmt.Fprintf(e.stderr, "xlb run: --%s %d: the modes are 0 (never), 1 (when short of room), 2 (engaged now) and 3 (always)\n", c.flag, c.v)
			return o, 2
		}
	}
	if o.Defence.Threshold < 0 || o.Defence.AmDropRate < 0 {
		fmt.Fprintf(e.stderr, "xlb run: --amemthresh and --am-droprate must be 0 (the default) or more\n")
		return o, 2
	}
	var err error
	if o.Logger, err = newLogger(e, logLevel, logFormat); err != nil {
		fmt.Fprintf(e.stderr, "xlb run: %v\n", err)
		return o, 2
	}
	if o.XDPMode, err = parseMode(mode); err != nil {
		fmt.Fprintf(e.stderr, "xlb run: --xdp-mode: %v\n", err)
		return o, 2
	}
	switch o.Dataplane {
	case "auto", "xdp", "ipvs":
	default:
		fmt.Fprintf(e.stderr, "xlb run: --dataplane: %q is not auto, xdp or ipvs\n", o.Dataplane)
		return o, 2
	}
	return o, -1
}

func runRun(e env, args []string) int {
	o, code := runOptions(e, args)
	if code >= 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := daemon.Run(ctx, o); err != nil {
		fmt.Fprintf(e.stderr, "xlb run: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(e env, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

func parseMode(s string) (dataplane.XDPMode, error) {
	switch s {
	case "auto":
		return dataplane.XDPAuto, nil
	case "native":
		return dataplane.XDPNative, nil
	case "generic":
		return dataplane.XDPGeneric, nil
	}
	return 0, fmt.Errorf("%q is not auto, native or generic", s)
}

// sizeFlags are the XDP data plane's sizes, for xlb run and xlb check.
func sizeFlags(fs *pflag.FlagSet, o *daemon.Options) {
	// Kernel memory measured on 6.18 (map memlock), allocated at start.
	fs.Uint32Var(&o.MaxConns, "max-conns", 0, "connection table size (0: the built-in 262144), IPv4 flows in an array of twice as many slots; 383 bytes each (the flow: 128 in the array and 15 in the LRU behind it for what overflows; its NAT reverse; its persistence template)")
	fs.Uint32Var(&o.MaxHalfOpen, "max-half-open", 0, "table of new flows not yet proven, which a SYN flood fills and recycles instead of the connection table (0: a quarter of --max-conns, at least 1024; the built-in 65536); 226 bytes each (the flow and its NAT reverse)")
	fs.Uint32Var(&o.MaxFullNATFlows, "max-fullnat-flows", 0, "FULLNAT flows of each family the XDP data plane holds at once: each holds a local port (0: the connection table's size plus the half-open table's, so every flow may be FULLNAT); 138 bytes each for IPv4 (NAT64 flows among them) and 162 for IPv6, allocated at start whether or not a service is FULLNAT: a director without FULLNAT saves the 98 MB of the default with 1")
	fs.Uint32Var(&o.MaxServices, "max-services", 0, "virtual services the XDP data plane holds (0: the built-in 4096); 330 bytes each")
	fs.Uint32Var(&o.MaxReals, "max-reals", 0, "real servers, counted per service, it holds (0: the built-in 65536); 128 bytes + 40 per CPU each")
	fs.Uint32Var(&o.MaxSchedEntries, "max-sched-entries", 0, "entries of the scheduler tables' pool (0: the built-in 1048576); 8 bytes each. A wrr service takes sum(weights)/gcd, sh and dh 256, mh 4093, rr and the least-connection schedulers one per real; twice while it changes")
	fs.Func("flood-rate", "flood mode (XDP): above this many new flows a second on one CPU, sh, dh and mh services without persistence forward new flows by their table alone, making no flow entry, and a packet without a flow too (0: off, the default)", func(s string) error {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return fmt.Errorf("want a count of new flows a second, got %q", s)
		}
		o.FloodRate = uint32(v)
		return nil
	})
	fs.IntVar(&o.MHTabIndex, "mh-tab-index", 0, "the CONFIG_IP_VS_MH_TAB_INDEX (8-17) of the IPVS directors whose mh tables XDP's must equal: the table has the index's prime of entries (0: 12, 4093 entries, the kernel's default and Debian's)")
	fs.StringVar(&o.BGPConfig, "bgp-config", "", "announce the VIPs over BGP for ECMP scale-out: GoBGP's configuration file (gobgpd's TOML: global, neighbors, timers, BFD); each VIP is announced while every service of it has quorum")
	fs.Var(prefixList{&o.BGPVIPs}, "bgp-vips", "announce only the VIPs in these prefixes (comma-separated; an address is its /32 or /128); default: every virtual server's VIP. A VIP is BGP's or VRRP's, never both")
	fs.BoolVar(&o.SloppyTCP, "sloppy-tcp", false, "IPVS's sloppy_tcp for every TCP service: a connection first seen mid-stream (moved here by ECMP from a director lost or added) is scheduled, not left to the kernel; with mh, sh or dh it reaches the real the first director chose (a service's own: keepalived.conf sloppy_tcp)")
	fs.BoolVar(&o.SloppySCTP, "sloppy-sctp", false, "IPVS's sloppy_sctp for every SCTP service (IPVS data plane: XDP serves no SCTP)")
}

// defenceFlags are IPVS's flood defence sysctls as flags of xlb run.
func defenceFlags(fs *pflag.FlagSet, d *dataplane.Defence) {
	const modes = "0 never, 1 when short of room, 2 now, 3 always; not given: IPVS's sysctl as the host set it, 0 for XDP"
	fs.IntVar(&d.DropEntry, "drop-entry", 0, "IPVS's drop_entry: end half-open and idle one-packet flows (a random 1/32 of the table each second); "+modes)
	fs.IntVar(&d.DropPacket, "drop-packet", 0, "IPVS's drop_packet: drop 1 in amemthresh/(amemthresh-room) new connections; "+modes)
	fs.IntVar(&d.SecureTCP, "secure-tcp", 0, "IPVS's secure_tcp: a NAT connection is established only once the real answers; "+modes)
	fs.IntVar(&d.Threshold, "amemthresh", 0, "short of room below this: XDP, free connection-table entries (0: a sixteenth of --max-conns); IPVS, free memory pages (0: as the host set it)")
	fs.IntVar(&d.AmDropRate, "am-droprate", 0, "drop_packet's 1 in N in mode 3 (0: IPVS's 10, or as the host set it)")
}

// prefixList is a comma-separated list of prefixes as a flag; a bare
// address is its host prefix.
type prefixList struct{ p *[]netip.Prefix }

func (l prefixList) String() string {
	if l.p == nil {
		return ""
	}
	var s []string
	for _, p := range *l.p {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

func (l prefixList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			*l.p = append(*l.p, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return fmt.Errorf("%q is neither an address nor a prefix", f)
		}
		*l.p = append(*l.p, p.Masked())
	}
	return nil
}

func (l prefixList) Type() string { return "prefixes" }
