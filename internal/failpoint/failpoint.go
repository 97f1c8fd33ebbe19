// Package failpoint lets a fault-injection test stall one of the daemon's
// loops from outside the process, to check that what watches it (the
// systemd watchdog) notices. It is inert unless XLB_FAILPOINTS names a
// directory when the process starts: then Stall(name) blocks while a file
// called name exists in it. Nothing in production sets XLB_FAILPOINTS.
package failpoint

import (
	"os"
	"path/filepath"
	"time"
)

var dir = os.Getenv("XLB_FAILPOINTS")

// Stall blocks while the failpoint name is armed (see the package).
func Stall(name string) {
	if dir == "" {
		return
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
