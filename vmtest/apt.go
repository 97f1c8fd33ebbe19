package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// apt runs apt-get and apt-cache against a private state under the cache
// (its own sources, lists and archives), so the host's /etc/apt and
// /var/lib/apt are never read or written.
type apt struct {
	dir    string   // $cache/apt
	suites []string // from kernels.lock
	mirror string   // http://deb.debian.org
	fresh  bool     // lists updated by this process
}

func newAPT(cache string, suites []string) *apt {
	return &apt{dir: filepath.Join(cache, "apt"), suites: suites, mirror: debianMirror()}
}

// debianMirror is $VMTEST_MIRROR, else the host of the first Debian
// source this machine uses, else deb.debian.org.
func debianMirror() string {
	if m := os.Getenv("VMTEST_MIRROR"); m != "" {
		return strings.TrimRight(m, "/")
	}
	uri := regexp.MustCompile(`(?m)^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(https?://\S+?)/debian/?(\s|$)`)
	for _, f := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if m := uri.FindSubmatch(b); m != nil {
			return string(m[1])
		}
	}
	return "http://deb.debian.org"
}

func (a *apt) sourcesList() string {
	const key = "/usr/share/keyrings/debian-archive-keyring.gpg"
	var b strings.Builder
	for _, s := range a.suites {
		archive := "debian"
		if strings.HasSuffix(s, "-security") {
			archive = "debian-security"
		}
		fmt.Fprintf(&b, "deb [signed-by=%s] %s/%s %s main\n", key, a.mirror, archive, s)
	}
	return b.String()
}

func (a *apt) config() string {
	d := a.dir
	return fmt.Sprintf(`Dir::State "%[1]s/state"; Dir::State::Lists "%[1]s/lists"; Dir::State::status "/dev/null";
Dir::Cache "%[1]s/cache"; Dir::Etc::SourceList "%[1]s/sources.list"; Dir::Etc::SourceParts "/nonexistent";
Dir::Etc::Preferences "%[1]s/preferences"; Dir::Etc::PreferencesParts "%[1]s/preferences.d";
Dir::Etc::Trusted "%[1]s/trusted.gpg"; Dir::Etc::TrustedParts "%[1]s/trusted.gpg.d";
APT::Architecture "amd64"; APT::Architectures { "amd64"; }; Acquire::Languages "none";
APT::Sandbox::User "root"; Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::IndexTargets::deb::CNF::DefaultEnabled "false";
`, d)
}

// update writes the private configuration and refreshes the package lists
// when they are missing, older than maxAge, or for other suites.
func (a *apt) update(maxAge time.Duration) error {
	if a.fresh {
		return nil
	}
	for _, d := range []string{"state", "lists/partial", "cache/archives/partial", "preferences.d", "trusted.gpg.d"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return err
		}
	}
	src := a.sourcesList()
	old, _ := os.ReadFile(filepath.Join(a.dir, "sources.list"))
	if err := os.WriteFile(filepath.Join(a.dir, "sources.list"), []byte(src), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(a.dir, "apt.conf"), []byte(a.config()), 0o644); err != nil {
		return err
	}
	stamp := filepath.Join(a.dir, "updated")
	if st, err := os.Stat(stamp); err == nil && string(old) == src && time.Since(st.ModTime()) < maxAge {
		return nil
	}
	logf("updating the package lists of %s (private APT state in %s)", strings.Join(a.suites, ", "), a.dir)
	if _, err := a.run("apt-get", "update", "-qq"); err != nil {
		return err
	}
	a.fresh = true
	return os.WriteFile(stamp, nil, 0o644)
}

func (a *apt) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "APT_CONFIG="+filepath.Join(a.dir, "apt.conf"), "LC_ALL=C")
	return cmd
}

func (a *apt) run(name string, args ...string) (string, error) {
	var out, stderr strings.Builder
	cmd := a.command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// errGone says Debian no longer serves a pinned version.
var errGone = errors.New("not served by the archive any more")

// fetch returns the path of the pinned .deb in the cache ($cache/debs/<sha256>.deb),
// downloading and checking it first if needed.
func (a *apt) fetch(cache string, p pin) (string, error) {
	deb := filepath.Join(cache, "debs", p.SHA256+".deb")
	if _, err := os.Stat(deb); err == nil {
		return deb, nil
	}
	if err := a.update(24 * time.Hour); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Join(a.dir, "cache"), "download-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	logf("downloading %s", p)
	cmd := a.command("apt-get", "download", "-qq", p.String())
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		// Lists from yesterday may name a build since deleted, or miss
		// its replacement: refresh once before calling the pin gone.
		if !a.fresh {
			if err := a.update(0); err != nil {
				return "", err
			}
			return a.fetch(cache, p)
		}
		return "", fmt.Errorf("download %s: %w (apt-get: %s)", p, errGone, strings.TrimSpace(string(out)))
	}
	files, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(files) != 1 {
		return "", fmt.Errorf("download %s: apt-get download left %d .deb files", p, len(files))
	}
	sum, err := fileSHA256(files[0])
	if err != nil {
		return "", err
	}
	if sum != p.SHA256 {
		return "", fmt.Errorf("download %s: sha256 %s, kernels.lock pins %s", p, sum, p.SHA256)
	}
	if err := os.MkdirAll(filepath.Dir(deb), 0o755); err != nil {
		return "", err
	}
	return deb, os.Rename(files[0], deb)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// newest finds the newest build of a kernel series in a suite: the
// cloud-amd64 linux-image-<series>.* package (linux-binary-* with its
// linux-modules-* and linux-base-* from 6.16 on), with the sha256 from the
// archive's index, as lock lines.
func (a *apt) newest(series, suite string) ([]pin, error) {
	if err := a.update(0); err != nil {
		return nil, err
	}
	names, err := a.run("apt-cache", "pkgnames", "linux-")
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`^linux-(image|binary)-` + regexp.QuoteMeta(series) + `[.][0-9][^ ]*-cloud-amd64$`)
	type cand struct{ pkg, ver string }
	var best *cand
	for _, name := range strings.Fields(names) {
		if !re.MatchString(name) {
			continue
		}
		out, err := a.run("apt-cache", "madison", name)
		if err != nil {
			return nil, err
		}
		for _, v := range madison(out, suite) {
			if best == nil || versionGreater(v, best.ver) {
				best = &cand{name, v}
			}
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no linux-image-%s.*-cloud-amd64 in %s (suites searched: %s)", series, suite, strings.Join(a.suites, " "))
	}
	pkgs := []string{best.pkg}
	if sfx, split := strings.CutPrefix(best.pkg, "linux-binary-"); split {
		pkgs = append(pkgs, "linux-modules-"+sfx, "linux-base-"+sfx)
	}
	var pins []pin
	for _, pkg := range pkgs {
		out, err := a.run("apt-cache", "show", pkg+"="+best.ver)
		if err != nil {
			return nil, err
		}
		sum := field(out, "SHA256")
		if sum == "" {
			return nil, fmt.Errorf("apt-cache show %s=%s: no SHA256", pkg, best.ver)
		}
		pins = append(pins, pin{Kernel: series, Suite: suite, Package: pkg, Version: best.ver, SHA256: sum})
	}
	return pins, nil
}

// madison returns the versions `apt-cache madison` lists for a suite.
func madison(out, suite string) []string {
	var vs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "|")
		if len(f) != 3 {
			continue
		}
		src := strings.Fields(f[2])
		if len(src) >= 2 && strings.Split(src[1], "/")[0] == suite {
			vs = append(vs, strings.TrimSpace(f[1]))
		}
	}
	return slices.Compact(vs)
}

// field returns the first value of a field in deb822 text.
func field(text, name string) string {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func versionGreater(a, b string) bool {
	return exec.Command("dpkg", "--compare-versions", a, "gt", b).Run() == nil
}
