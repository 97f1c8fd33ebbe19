package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"
)

// MiscCheck is keepalived's MISC_CHECK: it runs a command and reads its exit
// status. 0 is up; with Dynamic, 2..255 is up with weight status - 2 (so 2
// gives weight 0); anything else, and being killed, is down.
//
// The command runs with stdin, stdout and stderr on /dev/null and in a
// process group of its own, so that a timeout (or cancelled context) ends
// the whole group: SIGTERM first, SIGKILL two seconds later, and SIGKILL to
// whatever of the group is left once the command itself has gone.
type MiscCheck struct {
	// Args is the command's argument vector, as pkg/config splits
	// misc_path. When nil, Path is split with SplitCommand.
	Args []string
	// Path is the misc_path command line.
	Path string
	// Exec, if set, is the file to run for Args (its argv[0] stays
	// Args[0]): the resolved path whose security was checked.
	Exec string
	// Shell runs Path through /bin/sh -c instead of splitting it. Only
	// when asked: the command line is then shell code.
	Shell bool
	// Timeout is misc_timeout. Zero leaves only ctx to bound the run;
	// keepalived uses the delay_loop then, which the caller should pass.
	Timeout time.Duration
	// Dynamic is misc_dynamic.
	Dynamic bool
	// User runs the command as this user (name or uid), with its primary
	// group and supplementary groups, when this process is root; otherwise
	// the command runs as this process's user. Empty runs it as ourselves:
	// the caller passes keepalived's script_user default.
	User string
	// Group, with User, replaces the user's primary group.
	Group string
}

// killGrace is how long a script has between SIGTERM and SIGKILL, as in
// keepalived.
const killGrace = 2 * time.Second

// Check runs the command once.
func (c *MiscCheck) Check(ctx context.Context) Result {
	argv, err := c.argv()
	if err != nil {
		return down(fmt.Errorf("misc check: %w", err))
	}
	cred, err := credential(c.User, c.Group)
	if err != nil {
		return down(fmt.Errorf("misc check %s: %w", argv[0], err))
	}
	if err := ctx.Err(); err != nil {
		return down(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if c.Exec != "" && !c.Shell {
		cmd.Path, cmd.Err = c.Exec, nil
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		return down(fmt.Errorf("misc check: run %s: %w", argv[0], err))
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()

	var timeout <-chan time.Time
	if c.Timeout > 0 {
		t := time.NewTimer(c.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var why error
	select {
	case <-exited:
		return c.result(argv[0], cmd.ProcessState, waitErr)
	case <-timeout:
		why = fmt.Errorf("misc check %s: %w after %v", argv[0], ErrTimeout, c.Timeout)
	case <-ctx.Done():
		why = fmt.Errorf("misc check %s: %w", argv[0], context.Cause(ctx))
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(killGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // children that outlived it
	return down(why)
}

func (c *MiscCheck) argv() ([]string, error) {
	switch {
	case c.Shell:
		if c.Path == "" {
			return nil, errors.New("empty command")
		}
		return []string{"/bin/sh", "-c", c.Path}, nil
	case c.Args != nil:
		if len(c.Args) == 0 || c.Args[0] == "" {
			return nil, errors.New("empty command")
		}
		return c.Args, nil
	}
	return SplitCommand(c.Path)
}

func (c *MiscCheck) result(name string, ps *os.ProcessState, err error) Result {
	if ps == nil {
		return down(fmt.Errorf("misc check %s: %w", name, err))
	}
	ws, _ := ps.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return down(fmt.Errorf("misc check %s: %w: killed by %v", name, ErrScriptFailed, ws.Signal()))
	}
	code := ps.ExitCode()
	switch {
	case code == 0:
		return up()
	case c.Dynamic && code >= 2 && code <= 255:
		w := code - 2
		return Result{Up: true, Weight: &w}
	}
	return down(fmt.Errorf("misc check %s: %w: exit status %d", name, ErrScriptFailed, code))
}

// credential is what a script runs as: nil for ourselves, which is also what
// a process that is not root gets, as it cannot switch.
func credential(userName, groupName string) (*syscall.Credential, error) {
	if userName == "" || os.Geteuid() != 0 {
		return nil, nil
	}
	u, uid, gid, err := lookupIDs(userName, groupName)
	if err != nil {
		return nil, err
	}
	// Without its own supplementary groups the script would keep root's.
	groups := []uint32{gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if n, err := strconv.ParseUint(id, 10, 32); err == nil && uint32(n) != gid {
				groups = append(groups, uint32(n))
			}
		}
	}
	return &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}, nil
}

// IDs are the uid and gid a script runs with as userName (a name or a
// number; "": this process's own) and groupName (a name or a number; "":
// the user's primary group), as credential resolves them.
func IDs(userName, groupName string) (uid, gid uint32, err error) {
	_, uid, gid, err = lookupIDs(userName, groupName)
	return uid, gid, err
}

// lookupIDs is IDs, with the user found (nil for this process's own).
func lookupIDs(userName, groupName string) (*user.User, uint32, uint32, error) {
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	var u *user.User
	if userName != "" {
		var err error
		if u, err = lookupUser(userName); err != nil {
			return nil, 0, 0, err
		}
		n, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("user %s: uid %q: %w", userName, u.Uid, err)
		}
		g, err := strconv.ParseUint(u.Gid, 10, 32)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("user %s: gid %q: %w", userName, u.Gid, err)
		}
		uid, gid = uint32(n), uint32(g)
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			if g, err = user.LookupGroupId(groupName); err != nil {
				return nil, 0, 0, fmt.Errorf("script group: %w", err)
			}
		}
		n, err := strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("group %s: gid %q: %w", groupName, g.Gid, err)
		}
		gid = uint32(n)
	}
	return u, uid, gid, nil
}

func lookupUser(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	if err == nil {
		return u, nil
	}
	if _, perr := strconv.ParseUint(name, 10, 32); perr == nil {
		if u, err2 := user.LookupId(name); err2 == nil {
			return u, nil
		}
	}
	return nil, fmt.Errorf("script user: %w", err)
}
