package scripts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/health"
)

// Secure checks every script cfg names as keepalived 2.2.7 checks them when
// it loads a configuration (check_script_secure in lib/notify.c), against
// this machine's users and file system, and changes cfg as keepalived
// would:
//
//   - each script without a user of its own gets the default script user:
//     script_user, else keepalived_script if it exists, else xlb's own
//     (root). With enable_script_security set and neither user, scripts
//     without a user are removed, as keepalived removes them;
//   - a bare command name is looked up in PATH and replaced by the full
//     path (with keepalived's "Please specify full path" warning);
//   - a script that cannot be found or is not executable for its user is
//     removed;
//   - a script that runs as root (uid or gid 0, or setuid/setgid root) is
//     insecure when the file or any directory above it is not owned by
//     root, or is writable by a group other than root's or by everyone (a
//     root-owned directory with the sticky bit, such as /tmp, excepted).
//     With enable_script_security it is removed; without, it still runs
//     and is reported;
//   - without enable_script_security, "SECURITY VIOLATION" is reported
//     whenever a script is configured.
//
// What is removed goes as keepalived removes it: a vrrp_script and every
// track_script naming it, a MISC_CHECK checker (its real then has one
// checker less), a notify or quorum script. Each removal and each finding
// is a warning in keepalived's words, at the line of the block that names
// the script. A script_user, script group or per-script user that does not
// exist, and enable_script_security with no script_user and no
// keepalived_script user, are configuration errors to keepalived, which
// drops the scripts and runs on: warnings that say so here (errors with
// --strict). securityOnce is the running daemon's memory that
// enable_script_security was seen: keepalived never turns it off until it
// restarts.
func Secure(cfg *config.Config, securityOnce bool) error {
	s := &securer{cfg: cfg, security: cfg.Global.EnableScriptSecurity || securityOnce}
	if securityOnce && !cfg.Global.EnableScriptSecurity {
		s.warn(cfg.Global.Pos, "enable_script_security was removed, but it stays on until xlb restarts (as in keepalived)")
	}
	s.defaultUser()
	for i := range cfg.Scripts {
		vs := &cfg.Scripts[i]
		if !s.check(&vs.Script, vs.Name, vs.Pos) {
			s.removeTrackScript(vs.Name)
			cfg.Scripts[i].Name = ""
		}
	}
	cfg.Scripts = slices.DeleteFunc(cfg.Scripts, func(vs config.VRRPScript) bool { return vs.Name == "" })
	for i := range cfg.Instances {
		in := &cfg.Instances[i]
		s.notify(in.Pos, &in.NotifyMaster, &in.NotifyBackup, &in.NotifyFault, &in.NotifyStop, &in.Notify)
	}
	for i := range cfg.SyncGroups {
		g := &cfg.SyncGroups[i]
		s.notify(g.Pos, &g.NotifyMaster, &g.NotifyBackup, &g.NotifyFault, &g.NotifyStop, &g.Notify)
	}
	vrrpFlags := s.flags
	s.flags = 0
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		s.notify(vs.Pos, &vs.QuorumUp, &vs.QuorumDown)
		for j := range vs.Reals {
			r := &vs.Reals[j]
			s.notify(r.Pos, &r.NotifyUp, &r.NotifyDown)
			r.Checkers = slices.DeleteFunc(r.Checkers, func(c config.Checker) bool {
				if c.Kind != config.MiscCheck || c.Misc == nil {
					return false
				}
				switch s.checkFlags(c.Misc, r.Pos) {
				case outcomeInhibit:
					s.warn(r.Pos, fmt.Sprintf("Disabling misc script %s due to insecure", quoteArgs(c.Misc.Args)))
					return true
				case outcomeNotFound:
					s.warn(r.Pos, fmt.Sprintf("Disabling misc script %s since not found/accessible", quoteArgs(c.Misc.Args)))
					return true
				case outcomeNotExecutable:
					return true
				}
				return false
			})
		}
	}
	if !s.security {
		violation(s, vrrpFlags, "scripts")
		violation(s, s.flags, "check scripts")
	}
	if len(s.errs) > 0 {
		return s.errs
	}
	return nil
}

func violation(s *securer, flags int, what string) {
	if flags&scIsScript == 0 {
		return
	}
	extra := ""
	if flags&scInsecure != 0 {
		extra = " There are insecure scripts."
	}
	s.warn(s.cfg.Global.Pos, fmt.Sprintf("SECURITY VIOLATION - %s are being executed but script_security not enabled.%s", what, extra))
}

// keepalived's SC_* flags (lib/notify.h), as far as xlb needs them.
const (
	scInsecure = 1 << iota
	scIsScript
)

type outcome int

const (
	outcomeOK outcome = iota
	outcomeInhibit
	outcomeNotFound
	outcomeNotExecutable
)

type securer struct {
	cfg      *config.Config
	security bool
	// defUser is the default script user ("" = xlb's own); defFail is set
	// when scripts without a user must go, said once (defFailSaid).
	defUser, defGroup    string
	defFail, defFailSaid bool
	flags                int
	errs                 config.ErrorList
}

func (s *securer) warn(pos config.Pos, msg string) {
	s.cfg.Warnings = append(s.cfg.Warnings, config.Warning{File: pos.File, Line: pos.Line, Msg: msg})
}

// errorf is what keepalived reports as a configuration error and carries on
// from, without the script: a warning saying so (an error with --strict).
func (s *securer) errorf(pos config.Pos, format string, args ...any) {
	s.cfg.Warnings = append(s.cfg.Warnings, config.Warning{File: pos.File, Line: pos.Line, Msg: fmt.Sprintf(format, args...),
		Then: "the scripts it concerns are dropped, as keepalived drops them"})
}

func (s *securer) defaultUser() {
	g := s.cfg.Global
	if g.ScriptUser != "" {
		if _, _, err := health.IDs(g.ScriptUser, ""); err != nil {
			s.errorf(g.Pos, "Script user '%s' does not exist: Error setting global script uid/gid", g.ScriptUser)
		}
		if g.ScriptGroup != "" {
			if _, _, err := health.IDs("", g.ScriptGroup); err != nil {
				s.errorf(g.Pos, "Script group '%s' does not exist: Error setting global script uid/gid", g.ScriptGroup)
			}
		}
		s.defUser, s.defGroup = g.ScriptUser, g.ScriptGroup
		return
	}
	if _, err := user.Lookup("keepalived_script"); err == nil {
		s.defUser = "keepalived_script"
		return
	}
	// With neither user, keepalived runs scripts as itself (root), unless
	// enable_script_security is set: then a script without a user of its
	// own cannot run (see checkFlags).
	s.defFail = s.security
}

// check is the vrrp_script rule: false removes the script.
func (s *securer) check(sc *config.Script, name string, pos config.Pos) bool {
	switch s.checkFlags(sc, pos) {
	case outcomeInhibit:
		s.warn(pos, fmt.Sprintf("Disabling track script %s due to insecure", name))
		return false
	case outcomeNotFound:
		s.warn(pos, fmt.Sprintf("Disabling track script %s since not found/accessible", name))
		return false
	case outcomeNotExecutable:
		return false
	}
	return true
}

// notify applies the notify rule: anything but a secure executable script
// is removed, with check_script_secure's own message only.
func (s *securer) notify(pos config.Pos, ps ...**config.Script) {
	for _, p := range ps {
		if *p != nil && s.checkFlags(*p, pos) != outcomeOK {
			*p = nil
		}
	}
}

func (s *securer) removeTrackScript(name string) {
	drop := func(ts []config.TrackScript) []config.TrackScript {
		return slices.DeleteFunc(ts, func(t config.TrackScript) bool { return t.Name == name })
	}
	for i := range s.cfg.Instances {
		s.cfg.Instances[i].TrackScripts = drop(s.cfg.Instances[i].TrackScripts)
	}
	for i := range s.cfg.SyncGroups {
		s.cfg.SyncGroups[i].TrackScripts = drop(s.cfg.SyncGroups[i].TrackScripts)
	}
}

// checkFlags is check_script_secure for one script: it fills in the user,
// resolves the path, and says what becomes of the script.
func (s *securer) checkFlags(sc *config.Script, pos config.Pos) outcome {
	if len(sc.Args) == 0 || sc.Args[0] == "" {
		return outcomeNotFound
	}
	if sc.User == "" {
		if s.defFail {
			// keepalived looks the default user up at the first script
			// that needs it, and says so once.
			if !s.defFailSaid {
				s.errorf(s.cfg.Global.Pos, "Script user 'keepalived_script' does not exist: Unable to set default user keepalived_script for script (with enable_script_security, set script_user or create the user)")
				s.defFailSaid = true
			}
			return outcomeNotFound
		}
		sc.User, sc.Group = s.defUser, s.defGroup
	}
	uid, gid, err := health.IDs(sc.User, sc.Group)
	if err != nil {
		s.errorf(pos, "Unable to set uid/gid for script %s: %v", quoteArgs(sc.Args), err)
		return outcomeNotFound
	}
	path := sc.Args[0]
	if !strings.Contains(path, "/") {
		full, err := findInPath(path, uid, gid)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				s.warn(pos, fmt.Sprintf("Permissions failure for script %s in path - disabling", path))
			} else {
				s.warn(pos, fmt.Sprintf("Cannot find script %s in path - disabling", path))
			}
			return outcomeNotFound
		}
		s.warn(pos, fmt.Sprintf("WARNING - script `%s` resolved by path search to `%s`. Please specify full path.", path, full))
		path = full
		sc.Args = append([]string{full}, sc.Args[1:]...)
	}
	real, err := filepath.EvalSymlinks(path)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		s.warn(pos, fmt.Sprintf("Script %s cannot be accessed - %s", path, errText(err)))
		return outcomeNotFound
	}
	var st syscall.Stat_t
	if err := syscall.Stat(real, &st); err != nil {
		s.warn(pos, fmt.Sprintf("Unable to access script `%s` - disabling", real))
		return outcomeNotFound
	}
	// The file checked is the file run: the script runs as sc.Exec, the
	// path with every symlink resolved. Its argv[0] stays the name it was
	// called by, so that a multi-call binary (busybox's test, a symlink
	// to it) still knows what it is to be; keepalived makes argv[0] the
	// real path, unless a file of the called name sits beside it.
	sc.Exec = real
	s.flags |= scIsScript
	if !executable(&st, uid, gid) {
		s.warn(pos, fmt.Sprintf("WARNING - script '%s' is not executable for uid:gid %d:%d - disabling.", real, uid, gid))
		return outcomeNotExecutable
	}
	protect := uid == 0 || gid == 0 ||
		(st.Uid == 0 && st.Mode&syscall.S_IXUSR != 0 && st.Mode&syscall.S_ISUID != 0) ||
		(st.Gid == 0 && st.Mode&syscall.S_IXGRP != 0 && st.Mode&syscall.S_ISGID != 0)
	if !protect {
		return outcomeOK
	}
	return s.pathSecure(real, pos)
}

// pathSecure is keepalived's check_security: every prefix of the path,
// symlinks not followed.
func (s *securer) pathSecure(path string, pos config.Pos) outcome {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	prefix := "/"
	for i := -1; i < len(parts); i++ {
		if i >= 0 {
			prefix = strings.TrimSuffix(prefix, "/") + "/" + parts[i]
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(prefix, &st); err != nil {
			s.warn(pos, fmt.Sprintf("check_script_secure could not find script '%s' - disabling", path))
			return outcomeNotFound
		}
		typ := st.Mode & syscall.S_IFMT
		last := i == len(parts)-1
		if (!last && typ != syscall.S_IFDIR) || (last && typ != syscall.S_IFREG && typ != syscall.S_IFLNK) {
			s.warn(pos, fmt.Sprintf("Wrong file type found in script path '%s'.", path))
			return outcomeInhibit
		}
		dirNoSticky := typ == syscall.S_IFDIR && st.Mode&syscall.S_ISVTX == 0
		if st.Uid != 0 || ((dirNoSticky || typ == syscall.S_IFREG) &&
			((st.Gid != 0 && st.Mode&syscall.S_IWGRP != 0) || st.Mode&syscall.S_IWOTH != 0)) {
			s.flags |= scInsecure
			if s.security {
				s.warn(pos, fmt.Sprintf("Unsafe permissions found for script '%s' - disabling.", path))
				return outcomeInhibit
			}
			s.warn(pos, fmt.Sprintf("Unsafe permissions found for script '%s'.", path))
			return outcomeOK
		}
	}
	return outcomeOK
}

// executable is keepalived's is_executable: the primary group only.
func executable(st *syscall.Stat_t, uid, gid uint32) bool {
	m := st.Mode
	switch {
	case uid == 0:
		return m&(syscall.S_IXUSR|syscall.S_IXGRP|syscall.S_IXOTH) != 0
	case uid == st.Uid:
		return m&syscall.S_IXUSR != 0
	case gid == st.Gid:
		return m&syscall.S_IXGRP != 0
	}
	return m&syscall.S_IXOTH != 0
}

// findInPath searches xlb's PATH as keepalived searches its own, for a
// regular file executable by uid:gid.
func findInPath(name string, uid, gid uint32) (string, error) {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/bin:/usr/bin"
	}
	err := fs.ErrNotExist
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		cand := filepath.Join(dir, name)
		var st syscall.Stat_t
		if syscall.Stat(cand, &st) != nil {
			continue
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFREG && executable(&st, uid, gid) {
			return filepath.Abs(cand)
		}
		err = fs.ErrPermission
	}
	return "", err
}

// errText is strerror's text for err's errno, as keepalived prints it.
func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return err.Error()
}

// quoteArgs is keepalived's cmd_str: each argument in single quotes.
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + a + "'"
	}
	return strings.Join(q, " ")
}
