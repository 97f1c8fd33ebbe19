package health

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/internal/cnum"
)

// ErrFileFault: a FILE_CHECK's file holds a value that is a failure.
var ErrFileFault = errors.New("tracked file in fault")

// FileCheck is keepalived's FILE_CHECK (check_file.c, track_file.c): the
// number in a track_file's file decides the checker's state.
//
//   - With Weight 0, 0 is up and any other value down; Reverse swaps them.
//   - Otherwise the checker is up and adds value*Weight (negated with
//     Reverse) to the real server's weight (Result.AddWeight), unless the
//     product is at or below -2147483648 (IPVS_WEIGHT_FAULT): then it is
//     down.
//
// The file is read as keepalived reads it: its first 127 bytes, as C's
// strtol with base 0 reads them (leading blanks, a sign, 0x for hex, a
// leading 0 for octal; no digits reads 0). A missing or empty file reads 0.
// A value outside [-2147483648, 2147483648] is ignored, keeping the last
// one read (0 before any), which makes FileCheck the one Checker with
// state. Watch reports changes to the file by inotify, as keepalived
// watches it: the Monitor need not poll.
type FileCheck struct {
	Path    string
	Weight  int
	Reverse bool

	mu   sync.Mutex
	last int64
}

// Check reads the file.
func (c *FileCheck) Check(context.Context) Result {
	v, err := readTrackFile(c.Path)
	c.mu.Lock()
	if err == nil {
		c.last = v
	} else {
		v = c.last
	}
	c.mu.Unlock()
	return fileResult(c.Path, v, c.Weight, c.Reverse, err)
}

// fileResult is the state value gives, with ignored saying why it is not
// the file's current one.
func fileResult(path string, v int64, weight int, reverse bool, ignored error) Result {
	why := ""
	if ignored != nil {
		why = fmt.Sprintf(" (%v: kept the last value)", ignored)
	}
	if weight == 0 {
		if (v != 0) != reverse {
			return down(fmt.Errorf("file check %s: %w: value %d%s", path, ErrFileFault, v, why))
		}
		return up()
	}
	add := v * int64(weight)
	if reverse {
		add = -add
	}
	if add <= math.MinInt32 {
		return down(fmt.Errorf("file check %s: %w: value %d times weight %d%s", path, ErrFileFault, v, weight, why))
	}
	w := int(min(add, math.MaxInt32))
	return Result{Up: true, AddWeight: &w}
}

// readTrackFile reads the value of a track file as keepalived's
// process_track_file does. An error means the value is to be ignored.
func readTrackFile(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return 0, nil // a file that is not there reads 0
	}
	defer f.Close()
	buf := make([]byte, 127)
	n, err := io.ReadAtLeast(f, buf, 1)
	if err != nil && n == 0 {
		return 0, nil
	}
	v, ok := strtol(buf[:n])
	if !ok || v < math.MinInt32 || v > math.MaxInt32+1 {
		return 0, fmt.Errorf("invalid number %q", truncate(string(buf[:n]), 32))
	}
	return v, nil
}

// strtol reads a number as C's strtol(s, NULL, 0) does; ok is false when
// it overflows a long (ERANGE).
func strtol(s []byte) (v int64, ok bool) {
	v, _, overflow := cnum.Strtol(string(s), 0)
	return v, !overflow
}

// Watch reports changes to the file: written and closed, moved in or out,
// or deleted (keepalived's inotify mask on the file's directory).
func (c *FileCheck) Watch(ctx context.Context) (<-chan struct{}, error) {
	dir, name := watchedName(c.Path)
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_DELETE|unix.IN_MOVE); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), "inotify "+dir) // non-blocking: the poller reads it
	out := make(chan struct{}, 1)
	stop := context.AfterFunc(ctx, func() { _ = f.Close() })
	go func() {
		defer stop()
		defer f.Close()
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			if inotifyNames(buf[:n], name) {
				select {
				case out <- struct{}{}:
				default: // one pending wake-up is enough
				}
			}
		}
	}()
	return out, nil
}

// watchedName is the directory to watch and the file's name in it, the
// directory's symbolic links resolved (keepalived's init_track_files).
func watchedName(path string) (dir, name string) {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	dir, name = filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	return dir, name
}

// inotifyNames reports whether the events in b name the file name.
func inotifyNames(b []byte, name string) bool {
	found := false
	for len(b) >= unix.SizeofInotifyEvent {
		// struct inotify_event: wd, mask, cookie, len, then len bytes of
		// name padded with NULs.
		mask := binary.NativeEndian.Uint32(b[4:])
		end := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(b[12:]))
		if end > len(b) {
			break
		}
		n := b[unix.SizeofInotifyEvent:end]
		for len(n) > 0 && n[len(n)-1] == 0 {
			n = n[:len(n)-1]
		}
		if mask&unix.IN_ISDIR == 0 && string(n) == name {
			found = true
		}
		b = b[end:]
	}
	return found
}
