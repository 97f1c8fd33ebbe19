// Command xlb is the xlb director: a layer-4 load balancer whose data plane
// is XDP. `xlb run` runs it on a keepalived.conf; `xlb demo` on a built-in
// topology.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/xlbproject/xlb/pkg/dataplane/xdp"
)

// env is what a subcommand may touch, injected so tests run in-process.
type env struct {
	stdout, stderr io.Writer
}

type command struct {
	name, summary string
	run           func(e env, args []string) int
}

var commands = []command{
	{"run", "run the director on a keepalived.conf", runRun},
	{"check", "check a keepalived.conf like keepalived -t", runCheck},
	{"status", "show the running director's services, reals and VRRP state", runStatus},
	{"stop", "stop the daemon as its systemd job asks: a restart hands over without dropping traffic", runStop},
	{"demo", "forward real HTTP through xlb on a built-in topology of network namespaces", runDemo},
	{"probe", "show which data-plane features (XDP, TCX, clsact, IPVS...) this kernel offers", runProbe},
	{"version", "print the version", runVersion},
}

var version = "dev"

func main() {
	os.Exit(run(env{stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

func run(e env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "xlb: unknown command %q\n", args[0])
	usage(e.stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: xlb COMMAND [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nxlb COMMAND --help shows a command's flags.")
}

// version and commit are set at link time (make build, make deb:
// tools/version.sh); a plain go build says what the Go toolchain stamped.
var commit = ""

func runVersion(e env, args []string) int {
	if len(args) > 0 {
		w, code := e.stdout, 0
		if args[0] != "-h" && args[0] != "--help" {
			w, code = e.stderr, 2
		}
		fmt.Fprintln(w, "usage: xlb version\n\nPrints the version, the commit it was built from and the SHA-256 of the BPF object\nit carries (the data plane it would load).")
		return code
	}
	fmt.Fprintln(e.stdout, "xlb", version)
	c := commit
	if bi, ok := debug.ReadBuildInfo(); ok && c == "" {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				c = s.Value + c
			case "vcs.modified":
				if s.Value == "true" {
					c += " (modified)"
				}
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	fmt.Fprintf(e.stdout, "commit %s\nbpf object sha256 %s\n", c, xdp.ObjectSHA256())
	return 0
}
