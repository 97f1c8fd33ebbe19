package sched

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzWRR drives a wrr service through picks, weight edits, overload flips
// and dest adds and deletes, checking after each step that WRR.Pick moves
// exactly as the kernel's loop does and that WRRSequence and WRRStateAt
// agree with picking one by one.
//
// Input: byte 0 picks the number of dests (1 + b%8), the next bytes their
// weights (see fuzzWeight), the rest are operations, two bits of kind and
// six of argument: 0 pick 1+arg%16 times, 1 set dest arg's weight from the
// next byte, 2 flip dest arg's overload flag, 3 delete dest arg>>1 (arg
// even, more than one dest) or add one weighted by the next byte. Seeds in
// testdata/fuzz/FuzzWRR are named for the case they cover.
func FuzzWRR(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		ds := make([]Dest, 1+next()%8)
		for i := range ds {
			ds[i].Weight = fuzzWeight(next())
		}
		mine := NewWRR(ds)
		kernel := mine
		for ops := 0; len(data) > 0 && ops < 32; ops++ {
			b := next()
			arg := int(b >> 2)
			switch b & 3 {
			case 0:
				for range 1 + arg%16 {
					want := kernelWRRPick(&kernel, ds)
					require.Equal(t, want, mine.Pick(ds))
				}
			case 1:
				ds[arg%len(ds)].Weight = fuzzWeight(next())
				mine.Changed(ds)
				kernel.Changed(ds)
			case 2:
				ds[arg%len(ds)].Overloaded = !ds[arg%len(ds)].Overloaded
			case 3:
				if arg%2 == 0 && len(ds) > 1 || len(ds) == 8 {
					i := (arg >> 1) % len(ds)
					ds = append(ds[:i], ds[i+1:]...)
				} else {
					ds = append(ds, Dest{Weight: fuzzWeight(next())})
				}
				mine.Changed(ds)
				kernel.Changed(ds)
			}
			require.Equal(t, kernel, mine)
			checkWRRSequenceLimit(t, mine, ds, 1024)
		}
	})
}

// fuzzWeight maps a byte to a weight: mostly small, so sequences stay
// short, and from 0xF0 on multiples of 1009, so that gcds vary and Pick's
// bulk skip of empty passes gets exercised.
func fuzzWeight(b byte) int32 {
	if b >= 0xF0 {
		return int32(b-0xEF) * 1009
	}
	return int32(b % 32)
}
