package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// kernelTree is a pinned kernel unpacked in the cache.
type kernelTree struct {
	Name    string // series from kernels.lock: 6.1
	Release string // uname -r: 6.1.0-56-cloud-amd64
	Vmlinuz string
	ModRoot string // the directory holding lib/modules/<release>
}

// fetchKernel downloads, checks and unpacks a kernel's pinned .debs into
// $cache/kernels/<name>-<hash of the pins>, once.
func fetchKernel(cfg *config, a *apt, pins []pin) (*kernelTree, error) {
	h := sha256.New()
	for _, p := range pins {
		h.Write([]byte(p.SHA256))
	}
	name := pins[0].Kernel
	dir := filepath.Join(cfg.cache, "kernels", name+"-"+hex.EncodeToString(h.Sum(nil))[:12])
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		var debs []string
		for _, p := range pins {
			deb, err := a.fetch(cfg.cache, p)
			if errors.Is(err, errGone) {
				return nil, fmt.Errorf("kernel %s: %w\n\n"+
					"Debian deletes superseded kernel builds. Re-pin %s to the newest build of its series and suite:\n"+
					"    go run ./vmtest bump %s --write\n"+
					"which rewrites the %s lines of vmtest/kernels.lock with the new versions and their sha256 from the\n"+
					"archive's signed index; then run `make vmtest KERNEL=%s` and commit vmtest/kernels.lock",
					name, err, name, name, name, name)
			}
			if err != nil {
				return nil, fmt.Errorf("kernel %s: %w", name, err)
			}
			debs = append(debs, deb)
		}
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		for _, deb := range debs {
			if err := run("dpkg-deb", "-x", deb, dir); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
			return nil, err
		}
	}
	return openKernelTree(name, dir)
}

func openKernelTree(name, dir string) (*kernelTree, error) {
	kt := &kernelTree{Name: name, ModRoot: dir}
	// Kernels from 6.16 on ship their modules under /usr/lib/modules.
	if _, err := os.Stat(filepath.Join(dir, "lib/modules")); err != nil {
		kt.ModRoot = filepath.Join(dir, "usr")
	}
	rels, _ := os.ReadDir(filepath.Join(kt.ModRoot, "lib/modules"))
	if len(rels) != 1 {
		return nil, fmt.Errorf("kernel %s: want one release under %s/lib/modules, found %d", name, kt.ModRoot, len(rels))
	}
	kt.Release = rels[0].Name()
	for _, p := range []string{
		filepath.Join(dir, "boot", "vmlinuz-"+kt.Release),
		filepath.Join(kt.ModRoot, "lib/modules", kt.Release, "vmlinuz"),
	} {
		if _, err := os.Stat(p); err == nil {
			kt.Vmlinuz = p
			break
		}
	}
	if kt.Vmlinuz == "" {
		return nil, fmt.Errorf("kernel %s: no vmlinuz for %s in %s", name, kt.Release, dir)
	}
	// The .debs carry no modules.dep; their postinst makes it.
	if _, err := os.Stat(filepath.Join(kt.ModRoot, "lib/modules", kt.Release, "modules.dep")); err != nil {
		if err := run("depmod", "-b", kt.ModRoot, kt.Release); err != nil {
			return nil, err
		}
	}
	return kt, nil
}

// stageModules copies the given modules and everything they depend on,
// decompressed, into root/lib/modules/<release> and indexes them there, so
// the guest's modprobe finds them. Modules built into the kernel need
// nothing; missing ones are returned, not fatal: the guest's probe and tests
// then say what their absence costs.
func stageModules(kt *kernelTree, modules []string, root string) (missing []string, err error) {
	files := map[string]bool{}
	for _, m := range modules {
		out, err := exec.Command("modprobe", "-d", kt.ModRoot, "-S", kt.Release, "--show-depends", m).Output()
		if err != nil {
			missing = append(missing, m)
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "insmod" {
				files[f[1]] = true
			}
		}
	}
	src := filepath.Join(kt.ModRoot, "lib/modules", kt.Release)
	dst := filepath.Join(root, "lib/modules", kt.Release)
	for f := range files {
		rel, err := filepath.Rel(src, f)
		if err != nil || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("module %s is outside %s", f, src)
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return nil, err
		}
		// Decompressed here: not every kernel can load .ko.xz or .ko.zst itself.
		switch filepath.Ext(f) {
		case ".xz":
			err = decompress(out[:len(out)-3], "xz", "-dc", f)
		case ".zst":
			err = decompress(out[:len(out)-4], "zstd", "-qdc", f)
		default:
			err = copyFile(f, out, 0o644)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, idx := range []string{"modules.order", "modules.builtin", "modules.builtin.modinfo"} {
		if _, err := os.Stat(filepath.Join(src, idx)); err == nil {
			if err := copyFile(filepath.Join(src, idx), filepath.Join(dst, idx), 0o644); err != nil {
				return nil, err
			}
		}
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	return missing, run("depmod", "-b", root, kt.Release)
}

func decompress(out, tool string, args ...string) error {
	cmd := exec.Command(tool, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return os.WriteFile(out, b, 0o644)
}

// stageConfig copies the kernel's config to root/boot/config-<release>, as
// an installed Debian kernel has it (the XDP data plane reads CONFIG_HZ
// there for its clock); a package without one stages nothing.
func stageConfig(kt *kernelTree, root string) error {
	dir := filepath.Dir(kt.Vmlinuz)
	for _, p := range []string{filepath.Join(dir, "config-"+kt.Release), filepath.Join(dir, "config")} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if err := os.MkdirAll(filepath.Join(root, "boot"), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, "boot", "config-"+kt.Release), b, 0o644)
	}
	return nil
}
