package cnum

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

// glibc's answers for each (checked by hand against its strtol/strtoul
// rules: prefixes, the first non-digit ends the number, ERANGE clamps).
func TestStrtol(t *testing.T) {
	for _, tc := range []struct {
		in   string
		base int
		n    int64
		end  int
		over bool
	}{
		{"42", 10, 42, 2, false},
		{"  -17x", 10, -17, 5, false},
		{"+5", 0, 5, 2, false},
		{"0x1F", 0, 31, 4, false},
		{"0X1f\n", 0, 31, 4, false},
		{"0x", 0, 0, 1, false}, // "0", then the x is not a digit
		{"0xg", 16, 0, 1, false},
		{"0x10", 16, 16, 4, false},
		{"010", 0, 8, 3, false},
		{"010", 10, 10, 3, false},
		{"09", 0, 0, 1, false}, // octal: 9 is not a digit
		{"abc", 0, 0, 0, false},
		{"", 10, 0, 0, false},
		{"-", 10, 0, 0, false},
		{"\t\n 5", 0, 5, 4, false},
		{"9223372036854775807", 10, math.MaxInt64, 19, false},
		{"-9223372036854775808", 10, math.MinInt64, 20, false},
		{"9223372036854775808", 10, math.MaxInt64, 19, true},
		{"-9223372036854775809", 10, math.MinInt64, 20, true},
		{"99999999999999999999999", 0, math.MaxInt64, 23, true},
	} {
		n, end, over := Strtol(tc.in, tc.base)
		assert.Equal(t, []any{tc.n, tc.end, tc.over}, []any{n, end, over}, "strtol(%q, %d)", tc.in, tc.base)
	}
}

func TestStrtoul(t *testing.T) {
	for _, tc := range []struct {
		in   string
		u    uint64
		end  int
		over bool
	}{
		{"10", 10, 2, false},
		{"0xff.1", 255, 4, false},
		{"0377", 255, 4, false},
		{"18446744073709551615", math.MaxUint64, 20, false},
		{"18446744073709551616", math.MaxUint64, 20, true},
		{"-1", math.MaxUint64, 2, false}, // C wraps a negative
	} {
		u, end, over := Strtoul(tc.in, 0)
		assert.Equal(t, []any{tc.u, tc.end, tc.over}, []any{u, end, over}, "strtoul(%q, 0)", tc.in)
	}
}
