package ipvssync

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzDecode checks, for any datagram:
//
//  1. UnmarshalBinary does not panic, and fails only with ErrShort or
//     ErrSize, leaving the Message empty.
//  2. Every announced record is accounted for once: len(Conns) plus the
//     Drop counts is nr_conns; the Drops are in wire order, any SkipRecord
//     ones first, then at most one DropRest.
//  3. What decodes re-encodes, and the encoding decodes, with nothing
//     dropped, to the same SyncID, Version and Conns; encoding that again
//     gives the same bytes. Not the input's bytes: the decoder, like the
//     kernel, ignores padding contents, trailing bytes, unknown optional
//     options, the order of options, the other bits of an odd record type
//     and a PE name without data, and a dropped record has no encoding.
//     The one thing the kernel accepts but never sends is a seq option
//     without the InSeq/OutSeq flags or the flags without the option
//     (version 1); MarshalBinary refuses such a Message with ErrSeq.
//
// Seeds: testdata/fuzz/FuzzDecode, named for what they exercise
// (testdata/README.md lists them).
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := m.UnmarshalBinary(b); err != nil {
			require.True(t, errors.Is(err, ErrShort) || errors.Is(err, ErrSize), "error %v", err)
			require.Equal(t, Message{}, m)
			return
		}

		nrConns := int(b[0])
		if m.Version == Version1 {
			nrConns = int(b[4])
		}
		n := len(m.Conns)
		for i, d := range m.Dropped {
			n += d.Count
			require.Error(t, d.Err)
			if i > 0 {
				require.Greater(t, d.Index, m.Dropped[i-1].Index)
				require.Equal(t, SkipRecord, m.Dropped[i-1].Kind, "only the last drop may be DropRest")
			}
			if d.Kind == DropRest {
				require.Equal(t, nrConns-d.Index, d.Count)
			} else {
				require.Equal(t, 1, d.Count)
			}
		}
		require.Equal(t, nrConns, n)

		enc, err := m.MarshalBinary()
		if err != nil {
			require.ErrorIs(t, err, ErrSeq, "only a seq option/flag mismatch decodes but does not encode")
			require.Equal(t, Version1, m.Version)
			mismatch := false
			for _, c := range m.Conns {
				mismatch = mismatch || (c.Flags&SeqMask != 0) != (c.Seq != nil)
			}
			require.True(t, mismatch)
			return
		}
		require.Equal(t, m.Len(), len(enc))

		var again Message
		require.NoError(t, again.UnmarshalBinary(enc))
		assert.Empty(t, again.Dropped)
		require.Equal(t, m.SyncID, again.SyncID)
		require.Equal(t, m.Version, again.Version)
		require.Equal(t, m.Conns, again.Conns)

		enc2, err := again.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, enc, enc2)
	})
}
