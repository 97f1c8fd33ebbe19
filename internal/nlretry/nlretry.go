// Package nlretry retries a netlink dump the kernel interrupted: when the
// table changes while it is being dumped (an address leaving DAD, a
// neighbour resolving), the kernel flags the dump NLM_F_DUMP_INTR and
// vishvananda/netlink returns ErrDumpInterrupted with what it read, which
// may be incomplete. Dumping again is what the kernel asks for.
package nlretry

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// Tries bounds the dumps: a table changing under every one of them is a
// failure, reported as the last one's.
const Tries = 8

// Dump runs dump until it is not interrupted, at most Tries times.
func Dump[T any](dump func() (T, error)) (T, error) {
	var v T
	var err error
	for range Tries {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}
