package main

import (
	"bufio"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The guest's userland is busybox (static) plus a few real tools copied from
// the host with their shared libraries: the tests call ip with netns support
// and nsenter, and compare against ipvsadm; busybox's versions of these lack
// what the tests use. The host is Debian 12 like the tools' intended
// userland, so its binaries and libraries run unchanged in the guest, and
// tools/deps.sh vmtest installs them.
var hostTools = []struct {
	name  string   // looked up on the host
	links []string // extra names in the guest's /usr/sbin
}{
	{"ip", nil},
	// tc marks packets for IPVS's firewall-mark services (skbedit).
	{"tc", nil},
	{"nsenter", nil},
	{"ipvsadm", nil},
	{"ethtool", nil},
	{"kmod", []string{"modprobe", "insmod", "rmmod", "lsmod", "depmod", "modinfo"}},
	// The host suite's VRRP peer, and what its script-security test runs
	// as nobody with.
	{"keepalived", nil},
	{"setpriv", nil},
	// The ECMP router of the BGP scale-out tests.
	{"bird", nil},
	{"birdc", nil},
}

// stageBase fills root with everything every kernel's guest shares: busybox,
// the host tools, /init, the test binaries and xlb are added by the caller.
func stageBase(root string, initScript []byte) error {
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "lib", "lib64", "proc", "sys", "dev",
		"tmp", "run", "root", "etc/vmtest", "var", "mnt", "tests", "src"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Symlink("../run", filepath.Join(root, "var/run")); err != nil {
		return err
	}

	// Real tools first, then busybox for every other applet.
	provided := map[string]bool{}
	for _, t := range hostTools {
		path, err := lookHostTool(t.name)
		if err != nil {
			return err
		}
		dst := "/usr/sbin/" + t.name
		if err := copyWithLibs(path, root, dst); err != nil {
			return err
		}
		provided[t.name] = true
		for _, l := range t.links {
			if err := os.Symlink(t.name, filepath.Join(root, "usr/sbin", l)); err != nil {
				return err
			}
			provided[l] = true
		}
	}
	// The kernel runs /sbin/modprobe to load modules on demand.
	if err := os.Symlink("/usr/sbin/modprobe", filepath.Join(root, "sbin/modprobe")); err != nil {
		return err
	}

	// busybox-static, or Debian's dynamic busybox with its libraries.
	busybox, err := lookHostTool("busybox")
	if err != nil {
		return err
	}
	if static, err := isStatic(busybox); err != nil {
		return fmt.Errorf("read %s: %w", busybox, err)
	} else if static {
		err = copyFile(busybox, filepath.Join(root, "bin/busybox"), 0o755)
	} else {
		err = copyWithLibs(busybox, root, "/bin/busybox")
	}
	if err != nil {
		return err
	}
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		dst := filepath.Join(root, applet)
		if provided[filepath.Base(applet)] || applet == "bin/busybox" {
			continue
		}
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := os.Symlink("/bin/busybox", dst); err != nil {
			return err
		}
	}

	files := map[string]string{
		"init": string(initScript),
		// Debian's base accounts: tests run scripts as nobody.
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" +
			"bin:x:2:2:bin:/bin:/usr/sbin/nologin\nsys:x:3:3:sys:/dev:/usr/sbin/nologin\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"etc/group":         "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\nnogroup:x:65534:\n",
		"etc/hosts":         "127.0.0.1 localhost\n::1 localhost\n",
		"etc/nsswitch.conf": "hosts: files dns\n",
	}
	// Port names, for xlbadm as for ipvsadm.
	if b, err := os.ReadFile("/etc/services"); err == nil {
		files["etc/services"] = string(b)
	}
	for name, content := range files {
		mode := os.FileMode(0o644)
		if name == "init" {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), mode); err != nil {
			return err
		}
	}
	return nil
}

func lookHostTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on this host (tools/deps.sh vmtest installs it)", name)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return !slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }), nil
}

// copyWithLibs copies a dynamic binary to dst in root, and each library
// ldd resolves for it to the same path in root.
func copyWithLibs(bin, root, dst string) error {
	if err := copyFile(bin, filepath.Join(root, dst), 0o755); err != nil {
		return err
	}
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", bin, err)
	}
	for _, lib := range lddPaths(string(out)) {
		d := filepath.Join(root, lib)
		if _, err := os.Stat(d); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
			return err
		}
		if err := copyFile(lib, d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// lddPaths returns the files in ldd's output: the libraries after "=>" and
// the dynamic loader, which ldd names by its absolute path.
func lddPaths(out string) []string {
	var paths []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			paths = append(paths, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			paths = append(paths, f[0])
		}
	}
	return paths
}

// copyFile copies the content src resolves to.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyTree copies a directory (testdata/) recursively.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		default:
			info, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(p, out, info.Mode().Perm())
		}
	})
}

// writeCpio archives root as an uncompressed newc cpio, everything owned by
// root (the kernel unpacks it faster than a compressed one under TCG).
func writeCpio(root, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	var list strings.Builder
	err = filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		list.WriteString(rel + "\x00")
		return nil
	})
	if err != nil {
		return err
	}
	cmd := exec.Command("cpio", "--null", "--create", "--format=newc", "--owner=0:0", "--quiet")
	cmd.Dir = root
	cmd.Stdin = strings.NewReader(list.String())
	cmd.Stdout = f
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cpio: %w: %s", err, stderr.String())
	}
	return f.Close()
}

// concat writes the archives one after another: the kernel unpacks
// concatenated cpio archives in turn, so the shared part is built once.
func concat(out string, parts ...string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range parts {
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, in)
		in.Close()
		if err != nil {
			return err
		}
	}
	return f.Close()
}
