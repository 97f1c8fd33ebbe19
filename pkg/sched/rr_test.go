package sched

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRRPick(t *testing.T) {
	tests := []struct {
		name   string
		ds     []Dest
		cursor int
		picks  string
		after  int
	}{
		{"from head", weights(1, 1, 1), -1, "ABCAB", 1},
		{"weights ignored", weights(5, 1, 100), -1, "ABCA", 0},
		{"skips weight 0", weights(1, 0, 1), -1, "ACAC", 2},
		{"skips overloaded", []Dest{{Weight: 1}, {Weight: 1, Overloaded: true}, {Weight: 1}}, -1, "ACA", 0},
		{"from a cursor", weights(1, 1, 1), 1, "CAB", 1},
		{"cursor on an unavailable dest", weights(1, 0, 1), 1, "CA", 0},
		{"only the cursor available", weights(0, 3, 0), 1, "BB", 1},
		{"none available keeps cursor", weights(0, 0), 1, "--", 1},
		{"empty list", nil, -1, "-", -1},
		{"cursor past the end counts as head", weights(1, 1), 5, "AB", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := RR{Cursor: tt.cursor}
			assert.Equal(t, tt.picks, letters(picksOf(len(tt.picks), func() int { return r.Pick(tt.ds) })))
			assert.Equal(t, tt.after, r.Cursor)
		})
	}
}

func TestRRDeleted(t *testing.T) {
	tests := []struct {
		name           string
		cursor, delete int
		want           int
	}{
		{"cursor on deleted moves to predecessor", 2, 2, 1},
		{"cursor on deleted first dest goes to head", 0, 0, -1},
		{"cursor after deleted shifts down", 3, 1, 2},
		{"cursor before deleted stays", 1, 3, 1},
		{"head stays", -1, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := RR{Cursor: tt.cursor}
			r.Deleted(tt.delete)
			assert.Equal(t, tt.want, r.Cursor)
		})
	}
}

func TestRRDeletedThenPick(t *testing.T) {
	// A B C D with the cursor on C; C goes. IPVS continues after B, so D.
	ds := weights(1, 1, 1, 1)
	r := RR{Cursor: 2}
	r.Deleted(2)
	ds = append(ds[:2], ds[3:]...)
	assert.Equal(t, 2, r.Pick(ds)) // D, now at index 2
}
