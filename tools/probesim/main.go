// Command probesim estimates how often a flow table of slots in an array
// fails to place a flow while it still has room: n flows with random
// hashes into 2^bits slots, by linear probing within a bounded window and
// by two 4-slot buckets (first fit). It is the simulation behind the
// "flow table found in one memory access" notes in docs/DESIGN.md.
//
//	go run ./tools/probesim -bits 21
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
)

func main() {
	bits := flag.Int("bits", 21, "log2 of the slots")
	seed := flag.Uint64("seed", 1, "the hashes' seed")
	flag.Parse()
	m := 1 << *bits
	for _, load := range []float64{0.5, 0.75, 0.9} {
		n := int(load * float64(m))
		for _, w := range []int{8, 16, 32} {
			fmt.Printf("load %.2f: linear probing, window %2d: %.4f%% not placed\n", load, w, 100*float64(linear(n, m, w, *seed))/float64(n))
		}
		fmt.Printf("load %.2f: two 4-slot buckets, first fit: %.4f%% not placed\n", load, 100*float64(twoBuckets(n, m, *seed))/float64(n))
	}
}

// linear places n flows into m slots, each in the first free slot of the
// w slots from its hash on; it returns how many found none.
func linear(n, m, w int, seed uint64) int {
	used := make([]bool, m)
	r := rand.New(rand.NewPCG(seed, 0))
	failed := 0
	for range n {
		h := r.IntN(m)
		placed := false
		for p := range w {
			if i := (h + p) % m; !used[i] {
				used[i], placed = true, true
				break
			}
		}
		if !placed {
			failed++
		}
	}
	return failed
}

// twoBuckets places n flows into m/4 buckets of 4 slots: the first of
// the flow's two buckets with a free slot; it returns how many found none.
func twoBuckets(n, m int, seed uint64) int {
	fill := make([]uint8, m/4)
	r := rand.New(rand.NewPCG(seed, 1))
	failed := 0
	for range n {
		a, b := r.IntN(m/4), r.IntN(m/4)
		switch {
		case fill[a] < 4:
			fill[a]++
		case fill[b] < 4:
			fill[b]++
		default:
			failed++
		}
	}
	return failed
}
