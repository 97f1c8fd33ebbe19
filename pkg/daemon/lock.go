package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockDir holds the locks of the pin directories, one file each: bpffs
// holds no regular files to lock.
const LockDir = "/run/xlb"

// lockFile is an exclusive flock on a file that names its holder's pid.
type lockFile struct{ f *os.File }

// takeLock locks path (creating it), or says which process holds it. It
// never waits.
func takeLock(path, what string) (*lockFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", what, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", what, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf("xlb (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by %s (lock %s): one director per %s", what, holder, path, what)
		}
		return nil, fmt.Errorf("lock %s: %w", what, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &lockFile{f}, nil
}

// release lets the lock go. The file stays: removing it would let a third
// process lock a new file while a second still waits on the old one.
func (l *lockFile) release() { l.f.Close() }

// lockDirector takes the director's locks before anything is opened: one
// beside its control socket, one for its pin directory. A second daemon on
// either refuses at once and touches nothing.
func lockDirector(o Options) (release func(), err error) {
	sock, err := takeLock(o.Socket+".lock", "control socket "+o.Socket)
	if err != nil {
		return nil, err
	}
	pin := filepath.Join(LockDir, "pin"+strings.ReplaceAll(filepath.Clean(o.pinDir()), "/", "-")+".lock")
	pl, err := takeLock(pin, "pin directory "+o.pinDir())
	if err != nil {
		sock.release()
		return nil, err
	}
	return func() { pl.release(); sock.release() }, nil
}
