package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// testBinary is one package's test binary in the guest.
type testBinary struct {
	Name string // file under /tests, without .test: pkg_dataplane
	Dir  string // the package's directory in the guest, where it runs: /src/pkg/dataplane
}

// buildTests builds a static test binary per package that has tests, and
// copies each package's testdata/ (and contrib/systemd), into root.
func buildTests(cfg *config, root string) ([]testBinary, error) {
	args := append([]string{"list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{len .TestGoFiles}}\t{{len .XTestGoFiles}}"}, cfg.pkgs...)
	cmd := exec.Command(cfg.goTool, args...)
	cmd.Dir, cmd.Stderr = cfg.root, os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %w", strings.Join(cfg.pkgs, " "), err)
	}
	var bins []testBinary
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 4 || f[2] == "0" && f[3] == "0" {
			continue
		}
		importPath, dir := f[0], f[1]
		rel, err := filepath.Rel(cfg.root, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("package %s is outside the module at %s", importPath, cfg.root)
		}
		b := testBinary{Name: strings.ReplaceAll(rel, "/", "_"), Dir: "/src/" + rel}
		logf("building test binary for %s", importPath)
		// -s -w drops the symbol table and DWARF (a third of the size, and
		// the initramfs lives in guest RAM); panics still name functions.
		if err := goBuild(cfg, "test", "-c", "-ldflags=-s -w", "-o", filepath.Join(root, "tests", b.Name+".test"), importPath); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Join(root, b.Dir), 0o755); err != nil {
			return nil, err
		}
		if st, err := os.Stat(filepath.Join(dir, "testdata")); err == nil && st.IsDir() {
			if err := copyTree(filepath.Join(dir, "testdata"), filepath.Join(root, b.Dir, "testdata")); err != nil {
				return nil, err
			}
		}
		bins = append(bins, b)
	}
	if len(bins) == 0 {
		return nil, fmt.Errorf("no package with tests in %s", strings.Join(cfg.pkgs, " "))
	}
	// The unit file, which pkg/daemon's TestUnitCapabilities reads
	// (../../contrib/systemd from the package, as on the host).
	if err := copyTree(filepath.Join(cfg.root, "contrib", "systemd"), filepath.Join(root, "src", "contrib", "systemd")); err != nil {
		return nil, err
	}
	return bins, nil
}

// buildShim builds pkg/ipvsadm's stand-in for the kernel's IPVS (an
// LD_PRELOAD library) with the host's C compiler: the guest has none, and
// the ipvsadm goldens' check runs the real ipvsadm against it there too
// (IPVSSHIM_SO in init.sh).
func buildShim(cfg *config, out string) error {
	var cc string
	for _, name := range []string{"cc", "gcc", "clang", "clang-14"} {
		if p, err := exec.LookPath(name); err == nil {
			cc = p
			break
		}
	}
	if cc == "" {
		return fmt.Errorf("no C compiler (cc, gcc, clang, clang-14) for the ipvsadm shim: tools/deps.sh vmtest installs clang-14")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	logf("building the ipvsadm shim")
	cmd := exec.Command(cc, "-Wall", "-shared", "-fPIC", "-O1", "-o", out,
		filepath.Join(cfg.root, "pkg/ipvsadm/testdata/ipvsshim/shim.c"), "-ldl")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the ipvsadm shim: %w: %s", err, b)
	}
	return nil
}

// buildXLB builds a static xlb, which the guest runs as /usr/bin/xlb.
func buildXLB(cfg *config, out string) error {
	logf("building xlb")
	return goBuild(cfg, "build", "-ldflags=-s -w", "-o", out, "./cmd/xlb")
}

func goBuild(cfg *config, args ...string) error {
	cmd := exec.Command(cfg.goTool, args...)
	cmd.Dir = cfg.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
