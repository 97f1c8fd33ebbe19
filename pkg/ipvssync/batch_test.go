package ipvssync

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func conns4(n int) []Conn {
	cs := make([]Conn, n)
	for i := range cs {
		cs[i] = conn4(uint16(i))
	}
	return cs
}

// batchShape is how many conns each message holds.
func batchShape(msgs []*Message) []int {
	var n []int
	for _, m := range msgs {
		n = append(n, len(m.Conns))
	}
	return n
}

// checkBatch: the messages marshal, carry syncID and version 1, hold conns
// in order, and none is longer than maxlen unless it is a single record
// that alone does not fit.
func checkBatch(t *testing.T, msgs []*Message, conns []Conn, maxlen int) {
	t.Helper()
	var all []Conn
	for i, m := range msgs {
		b, err := m.MarshalBinary()
		require.NoError(t, err, "message %d", i)
		assert.Equal(t, uint8(9), m.SyncID)
		assert.Equal(t, Version1, m.Version)
		assert.LessOrEqual(t, len(m.Conns), MaxConns)
		if len(m.Conns) > 1 || headerLenV1+m.Conns[0].lenV1() <= maxlen {
			assert.LessOrEqual(t, len(b), maxlen, "message %d", i)
		}
		all = append(all, m.Conns...)
	}
	assert.Equal(t, conns, all)
}

func TestBatch(t *testing.T) {
	odd := conn4(1000)
	odd.PEName, odd.PEData = "sip", []byte("abc") // 46 bytes
	huge := conn6()                               // 112 bytes

	for _, tc := range []struct {
		name   string
		conns  []Conn
		maxlen int
		shape  []int
	}{
		{"none", nil, DefaultMaxLen, nil},
		{"exactly maxlen", conns4(3), 8 + 3*36, []int{3}},
		{"one byte over maxlen", conns4(3), 8 + 3*36 - 1, []int{2, 1}},
		// 8 + 46 + 36 = 90 would fit without the 2 bytes of padding.
		{"padding counts: fits", []Conn{odd, conn4(1)}, 92, []int{2}},
		{"padding counts: 1 byte short", []Conn{odd, conn4(1)}, 91, []int{1, 1}},
		{"padding counts: would fit unpadded", []Conn{odd, conn4(1)}, 90, []int{1, 1}},
		{"no padding after the last record", []Conn{conn4(1), odd}, 90, []int{2}},
		// 8 + 40*36 = 1448; a 41st record would make 1484.
		{"default maxlen", conns4(100), DefaultMaxLen, []int{40, 40, 20}},
		{"255 conns at most", conns4(300), 65535, []int{255, 45}},
		{"a record too long for maxlen gets a message of its own", []Conn{conn4(1), huge, conn4(2), conn4(3)}, 100, []int{1, 1, 2}},
		{"maxlen 1", conns4(2), 1, []int{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := Batch(9, tc.conns, tc.maxlen)
			require.NoError(t, err)
			assert.Equal(t, tc.shape, batchShape(msgs))
			checkBatch(t, msgs, tc.conns, tc.maxlen)
		})
	}

	t.Run("a message as long as maxlen", func(t *testing.T) {
		msgs, err := Batch(9, conns4(3), 116)
		require.NoError(t, err)
		b, err := msgs[0].MarshalBinary()
		require.NoError(t, err)
		assert.Len(t, b, 116)
	})
	t.Run("the oversized record's message", func(t *testing.T) {
		msgs, err := Batch(9, []Conn{huge, conn4(1)}, 100)
		require.NoError(t, err)
		require.Len(t, msgs, 2)
		assert.Equal(t, 8+112, msgs[0].Len(), "the kernel sizes such a buffer to the record")
	})
}

func TestBatchRejects(t *testing.T) {
	for _, maxlen := range []int{0, -1, 65536} {
		_, err := Batch(1, conns4(1), maxlen)
		require.ErrorIs(t, err, ErrMaxLen, "maxlen %d", maxlen)
	}

	cs := conns4(5)
	cs[3].PEData = []byte("x")
	_, err := Batch(1, cs, DefaultMaxLen)
	require.ErrorIs(t, err, ErrPE)
	assert.Contains(t, err.Error(), "batch ipvs sync conns: conn 3 (TCP 192.168.1.2:3 -> ")
}
