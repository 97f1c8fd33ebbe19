package nlretry

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/vishvananda/netlink"
)

func TestDump(t *testing.T) {
	n := 0
	v, err := Dump(func() (int, error) {
		n++
		if n < 3 {
			return -1, netlink.ErrDumpInterrupted
		}
		return 42, nil
	})
	assert.NoError(t, err)
	assert.Equal(t, 42, v)
	assert.Equal(t, 3, n, "again until not interrupted")

	n = 0
	_, err = Dump(func() (int, error) { n++; return 0, netlink.ErrDumpInterrupted })
	assert.ErrorIs(t, err, netlink.ErrDumpInterrupted)
	assert.Equal(t, Tries, n, "bounded")

	other := errors.New("no such device")
	n = 0
	_, err = Dump(func() (int, error) { n++; return 0, other })
	assert.ErrorIs(t, err, other)
	assert.Equal(t, 1, n, "other errors are not retried")
}
