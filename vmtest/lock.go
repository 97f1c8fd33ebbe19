package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// pin is one line of kernels.lock: a .deb fixed by version and checksum.
type pin struct {
	Kernel  string // series, as `make vmtest KERNEL=` names it: 6.1
	Suite   string // bookworm-security
	Package string
	Version string
	SHA256  string
}

func (p pin) String() string { return p.Package + "=" + p.Version }

// lockFile is kernels.lock, kept as lines so that rewriting some pins
// leaves the comments and the other kernels as they were.
type lockFile struct {
	path  string
	lines []string
	pins  []pin
}

var sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

func readLock(path string) (*lockFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lf := &lockFile{path: path}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		lf.lines = append(lf.lines, line)
		p, ok, err := parsePin(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if ok {
			lf.pins = append(lf.pins, p)
		}
	}
	return lf, sc.Err()
}

// parsePin parses a lock line; ok is false for comments and blank lines.
func parsePin(line string) (p pin, ok bool, err error) {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return pin{}, false, nil
	}
	if len(f) != 4 {
		return pin{}, false, fmt.Errorf("want <kernel> <suite> <package>=<version> <sha256>, got %d fields", len(f))
	}
	pkg, ver, found := strings.Cut(f[2], "=")
	if !found || pkg == "" || ver == "" {
		return pin{}, false, fmt.Errorf("%q is not <package>=<version>", f[2])
	}
	if !sha256Re.MatchString(f[3]) {
		return pin{}, false, fmt.Errorf("%q is not a sha256", f[3])
	}
	return pin{Kernel: f[0], Suite: f[1], Package: pkg, Version: ver, SHA256: f[3]}, true, nil
}

// kernels lists the kernels in the order the file has them.
func (lf *lockFile) kernels() []string {
	var ks []string
	for _, p := range lf.pins {
		if !slices.Contains(ks, p.Kernel) {
			ks = append(ks, p.Kernel)
		}
	}
	return ks
}

func (lf *lockFile) pinsFor(kernel string) ([]pin, error) {
	var ps []pin
	for _, p := range lf.pins {
		if p.Kernel == kernel {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("no kernel %q in %s (it has: %s)", kernel, lf.path, strings.Join(lf.kernels(), " "))
	}
	return ps, nil
}

// suites lists the suites the pins come from, for the private APT sources.
func (lf *lockFile) suites() []string {
	var ss []string
	for _, p := range lf.pins {
		if !slices.Contains(ss, p.Suite) {
			ss = append(ss, p.Suite)
		}
	}
	return ss
}

// replace swaps a kernel's pins for new ones, in place of the first old line.
func (lf *lockFile) replace(kernel string, pins []pin) {
	var out []string
	done := false
	for _, line := range lf.lines {
		p, ok, _ := parsePin(line)
		if !ok || p.Kernel != kernel {
			out = append(out, line)
			continue
		}
		if !done {
			for _, np := range pins {
				out = append(out, formatPin(np))
			}
			done = true
		}
	}
	if !done {
		for _, np := range pins {
			out = append(out, formatPin(np))
		}
	}
	lf.lines = out
	lf.pins = slices.DeleteFunc(lf.pins, func(p pin) bool { return p.Kernel == kernel })
	lf.pins = append(lf.pins, pins...)
}

func formatPin(p pin) string {
	return fmt.Sprintf("%-5s %-18s %-58s %s", p.Kernel, p.Suite, p.String(), p.SHA256)
}

func (lf *lockFile) write() error {
	return os.WriteFile(lf.path, []byte(strings.Join(lf.lines, "\n")+"\n"), 0o644)
}
