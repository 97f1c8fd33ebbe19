package xdp

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPool(t *testing.T) {
	p := newPool(100)
	a, ok := p.alloc(30)
	require.True(t, ok)
	b, _ := p.alloc(30)
	c, _ := p.alloc(30)
	assert.Equal(t, []uint32{0, 30, 60}, []uint32{a, b, c})
	_, ok = p.alloc(11)
	assert.False(t, ok, "10 entries left")
	p.free(b, 30)
	d, ok := p.alloc(20)
	require.True(t, ok)
	assert.EqualValues(t, 30, d, "first fit")
	p.free(a, 30)
	p.free(d, 20)
	p.free(c, 30)
	assert.Equal(t, pool{{0, 100}}, p, "frees merge back into one span")

	q := newPool(100)
	require.True(t, q.take(40, 20))
	assert.Equal(t, pool{{0, 40}, {60, 40}}, q)
	assert.False(t, q.take(50, 20), "already used")

	// Random allocs and frees never hand out an entry twice, and free
	// everything back.
	rng := rand.New(rand.NewPCG(1, 2))
	r := newPool(1 << 12)
	used := make([]bool, 1<<12)
	var held []span
	for range 5000 {
		if len(held) > 0 && rng.IntN(2) == 0 {
			i := rng.IntN(len(held))
			s := held[i]
			held = append(held[:i], held[i+1:]...)
			for k := s.off; k < s.off+s.n; k++ {
				used[k] = false
			}
			r.free(s.off, s.n)
			continue
		}
		n := uint32(1 + rng.IntN(300))
		off, ok := r.alloc(n)
		if !ok {
			continue
		}
		for k := off; k < off+n; k++ {
			require.False(t, used[k], "entry %d handed out twice", k)
			used[k] = true
		}
		held = append(held, span{off, n})
	}
	for _, s := range held {
		r.free(s.off, s.n)
	}
	assert.Equal(t, pool{{0, 1 << 12}}, r)
}
