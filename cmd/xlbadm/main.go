// Command xlbadm is ipvsadm for xlb: the same command lines, the same
// tables and exit codes, run against the xlb daemon through its control
// socket instead of against the kernel's IPVS.
package main

import (
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/xlbproject/xlb/pkg/control"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, socketPath()))
}

// socketPath is the daemon's control socket; XLB_SOCKET overrides it (all
// of ipvsadm's options are taken, so this one is not a flag).
func socketPath() string {
	if s := os.Getenv("XLB_SOCKET"); s != "" {
		return s
	}
	return control.DefaultSocket
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, socket string) int {
	var in string
	if slices.Contains(args, "-R") || slices.Contains(args, "--restore") {
		b, err := io.ReadAll(stdin)
		if err != nil {
			fmt.Fprintf(stderr, "xlbadm: reading standard input: %v\n", err)
			return 1
		}
		in = string(b)
	}
	r, err := control.NewClient(socket).Ipvsadm(args, in)
	if err != nil {
		fmt.Fprintf(stderr, "xlbadm: %v\n", err)
		return 1
	}
	io.WriteString(stdout, r.Stdout)
	if r.Stderr != "" {
		fmt.Fprintln(stderr, r.Stderr)
	}
	return r.Code
}
