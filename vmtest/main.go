// Command vmtest runs xlb's Go tests inside QEMU on pinned Debian kernels,
// one throw-away VM per kernel, and prints a kernel x feature matrix from
// `xlb probe` run in each guest. See vmtest/README.md.
//
//	go run ./vmtest run [flags] KERNEL     one kernel (make vmtest KERNEL=6.1); KERNEL "host" probes the host only
//	go run ./vmtest all [flags]            every kernel in kernels.lock, plus the host's probe (make vmtest-all)
//	go run ./vmtest matrix                 print the matrix of the last runs again
//	go run ./vmtest fetch [KERNEL...]      download, check and unpack pinned kernels
//	go run ./vmtest bump KERNEL [--write]  re-pin KERNEL to the newest build Debian serves
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/xlbproject/xlb/pkg/probe"
)

//go:embed init.sh
var initScript []byte

const (
	defaultPkgs      = "./pkg/... ./cmd/... ./internal/..."
	defaultTestFlags = "-test.short=false -test.timeout=20m"
	// Loaded in every guest: what the tests and the probe use (veth,
	// bridge and dummy topologies, clsact, IPVS with every scheduler and
	// the SIP persistence engine (pkg/ipvsadm's v6 listings), IPIP for
	// IPVS TUN (with fou and ip_gre: GUE and GRE reals; ip6_tunnel, fou6 and ip6_gre for IPv6's),
	// flower and skbedit to set the firewall marks of IPVS's
	// fwmark services, macvlan for keepalived's use_vmac), and the NETLINK_XFRM and NETLINK_NETFILTER families
	// by their aliases (xfrm_user; nfnetlink, built into "netfilter" on 7.x)
	// because netlink.NewHandleAt opens sockets of both and fails with
	// "protocol not supported" without them: the guest has only the modules
	// listed here, so the kernel's own autoloading finds nothing else.
	defaultModules = "veth dummy bridge macvlan sch_ingress cls_bpf cls_flower act_skbedit ipip sit fou ip_gre ip6_tunnel fou6 ip6_gre nf_conntrack net-pf-16-proto-6 net-pf-16-proto-12 " +
		"ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh ip_vs_dh ip_vs_lc ip_vs_wlc ip_vs_sed ip_vs_nq ip_vs_mh ip_vs_lblc ip_vs_lblcr ip_vs_fo ip_vs_ovf ip_vs_twos ip_vs_pe_sip"
)

type config struct {
	root, lock, cache, out, goTool string
	pkgs, testFlags, modules       []string
	kernels                        []string
	mem                            string
	smp                            int
	timeout                        time.Duration
	keep, quiet, noDeps, write     bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := vmtest(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vmtest: "+format+"\n", args...)
}

// run runs a host command, its output kept for the error.
func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: go run ./vmtest COMMAND [flags]

  run KERNEL       run the tests on one kernel from vmtest/kernels.lock ("host": probe the host only)
  all              run every kernel, probe the host, print the matrix
  matrix           print the matrix of the last runs in --out again
  fetch [KERNEL]   download, check and unpack pinned kernels (default: all)
  bump KERNEL      print new pins for the newest build of KERNEL's series; --write puts them in kernels.lock

go run ./vmtest COMMAND --help lists the flags.`)
}

func vmtest(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		return 2
	}
	cmd := args[0]
	cfg, err := parseFlags(cmd, args[1:])
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		logf("%v", err)
		return 2
	}
	switch cmd {
	case "run", "all":
		return runMatrix(ctx, cfg)
	case "matrix":
		var rows []row
		for _, k := range cfg.kernels {
			rows = append(rows, loadRow(cfg.out, k))
		}
		printMatrix(os.Stdout, rows)
		return 0
	case "fetch":
		err = fetchAll(cfg)
	case "bump":
		err = bump(cfg)
	default:
		usage()
		return 2
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}

func parseFlags(cmd string, args []string) (*config, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	cfg := &config{root: root, lock: filepath.Join(root, "vmtest", "kernels.lock")}
	fs := pflag.NewFlagSet("vmtest "+cmd, pflag.ContinueOnError)
	cache := os.Getenv("VMTEST_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "xlb-vmtest")
	}
	fs.StringVar(&cfg.cache, "cache", cache, "download and unpack cache ($VMTEST_CACHE)")
	fs.StringVar(&cfg.lock, "lock", cfg.lock, "the kernel pins")
	fs.StringVar(&cfg.out, "out", filepath.Join(root, "vmtest-out"), "per-kernel logs: OUT/KERNEL/{console.log,test.log,probe.json,result.json}")
	pkgs := fs.String("pkgs", defaultPkgs, "Go packages to test in the guest (space-separated patterns)")
	testFlags := fs.String("testflags", defaultTestFlags, "flags for each test binary (-test.run=..., -test.timeout=...)")
	modules := fs.String("modules", defaultModules, "kernel modules to load in the guest")
	kernels := fs.String("kernels", "", "kernels for all/matrix (default: every kernel in kernels.lock)")
	fs.StringVar(&cfg.mem, "mem", "1G", "guest RAM")
	fs.IntVar(&cfg.smp, "smp", 2, "guest CPUs (TCG runs them all on one host thread)")
	fs.DurationVar(&cfg.timeout, "timeout", time.Hour, "kill a VM that runs longer")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the work directory (initramfs staging)")
	fs.BoolVar(&cfg.quiet, "quiet", false, "do not stream the guest's test output")
	fs.BoolVar(&cfg.noDeps, "no-deps", false, "do not run tools/deps.sh vmtest")
	fs.BoolVar(&cfg.write, "write", false, "bump: rewrite kernels.lock")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: go run ./vmtest %s [flags]\n\nflags:\n", cmd)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	cfg.pkgs, cfg.testFlags, cfg.modules = strings.Fields(*pkgs), strings.Fields(*testFlags), strings.Fields(*modules)
	if len(cfg.pkgs) == 0 {
		cfg.pkgs = strings.Fields(defaultPkgs)
	}
	if cfg.goTool, err = exec.LookPath("go"); err != nil {
		cfg.goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	lf, err := readLock(cfg.lock)
	if err != nil {
		return nil, err
	}
	switch cmd {
	case "run", "bump":
		if fs.NArg() != 1 {
			return nil, fmt.Errorf("%s takes one kernel (one of: %s)", cmd, strings.Join(lf.kernels(), " "))
		}
		cfg.kernels = fs.Args()
	case "fetch":
		cfg.kernels = fs.Args()
	case "all", "matrix":
		cfg.kernels = strings.Fields(*kernels)
		if fs.NArg() > 0 {
			return nil, fmt.Errorf("%s takes no arguments (use --kernels)", cmd)
		}
	}
	if len(cfg.kernels) == 0 {
		cfg.kernels = lf.kernels()
		if cmd == "all" || cmd == "matrix" {
			cfg.kernels = append([]string{"host"}, cfg.kernels...)
		}
	}
	for _, k := range cfg.kernels {
		if k == "host" && cmd != "bump" && cmd != "fetch" {
			continue
		}
		if _, err := lf.pinsFor(k); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/xlbproject/xlb\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run vmtest inside the xlb module (no go.mod of github.com/xlbproject/xlb above here)")
		}
		dir = parent
	}
}

// runMatrix builds the guest's shared part once, runs each kernel in turn
// (never two VMs at once) and the host probe, and prints the results.
func runMatrix(ctx context.Context, cfg *config) int {
	t0 := time.Now()
	if !cfg.noDeps {
		cmd := exec.Command(filepath.Join(cfg.root, "tools", "deps.sh"), "vmtest")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			logf("tools/deps.sh vmtest: %v", err)
			return 1
		}
	}
	work, err := os.MkdirTemp("", "xlb-vmtest-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	if cfg.keep {
		logf("work directory: %s", work)
	} else {
		defer os.RemoveAll(work)
	}

	guests := slices.DeleteFunc(slices.Clone(cfg.kernels), func(k string) bool { return k == "host" })
	base := filepath.Join(work, "base")
	if err := os.MkdirAll(base, 0o755); err != nil {
		logf("%v", err)
		return 1
	}
	xlb := filepath.Join(base, "usr/bin/xlb")
	if len(guests) > 0 {
		err = buildBase(cfg, base, filepath.Join(work, "base.cpio"))
	} else if err = os.MkdirAll(filepath.Dir(xlb), 0o755); err == nil {
		err = buildXLB(cfg, xlb) // the host probe needs only xlb
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	logf("built in %.1fs", time.Since(t0).Seconds())

	lf, err := readLock(cfg.lock)
	if err != nil {
		logf("%v", err)
		return 1
	}
	a := newAPT(cfg.cache, lf.suites())
	var rows []row
	failed := false
	for _, k := range cfg.kernels {
		if ctx.Err() != nil {
			break
		}
		var res *runResult
		if k == "host" {
			res = probeHost(cfg, xlb)
		} else {
			res = runKernel(ctx, cfg, lf, a, k, work)
			printSummary(os.Stdout, res)
		}
		failed = failed || res.Status == "fail" || res.Status == "error"
		rows = append(rows, loadRow(cfg.out, k))
	}
	fmt.Println()
	printMatrix(os.Stdout, rows)
	logf("done in %.1fs; logs in %s", time.Since(t0).Seconds(), cfg.out)
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

// buildBase stages and archives what every guest shares.
func buildBase(cfg *config, base, cpio string) error {
	if err := stageBase(base, initScript); err != nil {
		return err
	}
	if err := buildXLB(cfg, filepath.Join(base, "usr/bin/xlb")); err != nil {
		return err
	}
	if err := buildShim(cfg, filepath.Join(base, "usr/lib/xlb/ipvsshim.so")); err != nil {
		return err
	}
	bins, err := buildTests(cfg, base)
	if err != nil {
		return err
	}
	var list strings.Builder
	for _, b := range bins {
		fmt.Fprintf(&list, "%s %s\n", b.Name, b.Dir)
	}
	for name, content := range map[string]string{
		"tests":     list.String(),
		"testflags": strings.Join(cfg.testFlags, " ") + "\n",
		"modules":   strings.Join(cfg.modules, " ") + "\n",
	} {
		if err := os.WriteFile(filepath.Join(base, "etc/vmtest", name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return writeCpio(base, cpio)
}

// runKernel runs one guest; whatever goes wrong ends up in the result.
func runKernel(ctx context.Context, cfg *config, lf *lockFile, a *apt, kernel, work string) *runResult {
	res := &runResult{Kernel: kernel, Status: "error"}
	outDir := filepath.Join(cfg.out, kernel)
	err := func() error {
		if err := os.RemoveAll(outDir); err != nil {
			return err
		}
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return err
		}
		pins, err := lf.pinsFor(kernel)
		if err != nil {
			return err
		}
		kt, err := fetchKernel(cfg, a, pins)
		if err != nil {
			return err
		}
		res.Release = kt.Release
		kroot := filepath.Join(work, "kernel-"+kernel)
		if res.MissingModules, err = stageModules(kt, cfg.modules, kroot); err != nil {
			return err
		}
		if len(res.MissingModules) > 0 {
			logf("%s: not in this kernel (neither built in nor a module): %s", kernel, strings.Join(res.MissingModules, " "))
		}
		if err := stageConfig(kt, kroot); err != nil {
			return err
		}
		kcpio, initrd := filepath.Join(work, "kernel-"+kernel+".cpio"), filepath.Join(work, "initrd-"+kernel+".cpio")
		if err := writeCpio(kroot, kcpio); err != nil {
			return err
		}
		if err := concat(initrd, filepath.Join(work, "base.cpio"), kcpio); err != nil {
			return err
		}
		defer os.Remove(initrd)
		if st, err := os.Stat(initrd); err == nil {
			logf("%s: initramfs %d MiB", kernel, st.Size()>>20)
		}
		return boot(ctx, cfg, kt, initrd, outDir, res)
	}()
	if err != nil {
		res.Status, res.Reason = "error", err.Error()
		logf("%s: %v", kernel, err)
	}
	saveResult(outDir, res)
	return res
}

// probeHost is the matrix's host row: the probe on the running kernel.
// Testing the host kernel is `make test`'s job.
func probeHost(cfg *config, xlb string) *runResult {
	res := &runResult{Kernel: "host", Release: probe.KernelRelease(), Status: "-"}
	outDir := filepath.Join(cfg.out, "host")
	_ = os.RemoveAll(outDir)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		res.Status, res.Reason = "error", err.Error()
		return res
	}
	cmd := exec.Command(xlb, "probe", "--json")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		res.Status, res.Reason = "error", fmt.Sprintf("xlb probe: %v", err)
	} else if err := os.WriteFile(filepath.Join(outDir, "probe.json"), out, 0o644); err != nil {
		res.Status, res.Reason = "error", err.Error()
	}
	saveResult(outDir, res)
	return res
}

func saveResult(dir string, res *runResult) {
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "result.json"), append(b, '\n'), 0o644); err != nil {
		logf("save result: %v", err)
	}
}

func fetchAll(cfg *config) error {
	lf, err := readLock(cfg.lock)
	if err != nil {
		return err
	}
	a := newAPT(cfg.cache, lf.suites())
	for _, k := range cfg.kernels {
		pins, err := lf.pinsFor(k)
		if err != nil {
			return err
		}
		kt, err := fetchKernel(cfg, a, pins)
		if err != nil {
			return err
		}
		fmt.Printf("%-5s %s %s\n", k, kt.Release, kt.Vmlinuz)
	}
	return nil
}

// bump looks up the newest build of a kernel's series in the suite it is
// pinned from, and prints (or writes) its lock lines.
func bump(cfg *config) error {
	lf, err := readLock(cfg.lock)
	if err != nil {
		return err
	}
	kernel := cfg.kernels[0]
	old, err := lf.pinsFor(kernel)
	if err != nil {
		return err
	}
	a := newAPT(cfg.cache, lf.suites())
	pins, err := a.newest(kernel, old[0].Suite)
	if err != nil {
		return err
	}
	for _, p := range pins {
		fmt.Println(formatPin(p))
	}
	if slices.Equal(pins, old) {
		logf("%s is already pinned to the newest build, %s", kernel, old[0].Version)
		return nil
	}
	if !cfg.write {
		logf("%s: pinned %s, newest %s; --write puts it in %s", kernel, old[0].Version, pins[0].Version, cfg.lock)
		return nil
	}
	lf.replace(kernel, pins)
	if err := lf.write(); err != nil {
		return err
	}
	logf("%s: %s -> %s in %s; now run `make vmtest KERNEL=%s` and commit the lock file", kernel, old[0].Version, pins[0].Version, cfg.lock, kernel)
	return nil
}
