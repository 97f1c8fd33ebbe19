// Package cnum reads numbers as the C library does (glibc, the C locale):
// what keepalived and ipvsadm accept as a number is what strtol and
// strtoul accept, leading white space, sign, 0x and 0 prefixes, stopping
// at the first character that is not a digit, and overflow included.
package cnum

import "math"

// IsSpace is isspace in the C locale.
func IsSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// HexDigit is c's value as a hexadecimal digit, or -1.
func HexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// scan is strtoul's reading of s in base 0, 8, 10 or 16: white space, a
// sign, the base's prefix (base 0: 0x and a hex digit for 16, 0 for 8,
// else 10; base 16: an optional 0x), then digits. u is the magnitude
// (MaxUint64 on overflow); end is the index after the last digit, 0 when
// there is none (C's endptr left at s).
func scan(s string, base int) (neg bool, u uint64, end int, overflow bool) {
	i := 0
	for i < len(s) && IsSpace(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	hexPrefix := i+2 < len(s) && s[i] == '0' && s[i+1]|0x20 == 'x' && HexDigit(s[i+2]) >= 0
	switch {
	case base == 0 && hexPrefix:
		base, i = 16, i+2
	case base == 0 && i < len(s) && s[i] == '0':
		base = 8
	case base == 0:
		base = 10
	case base == 16 && hexPrefix:
		i += 2
	}
	b := uint64(base)
	start := i
	for ; i < len(s); i++ {
		d := HexDigit(s[i])
		if d < 0 || uint64(d) >= b {
			break
		}
		if u > (math.MaxUint64-uint64(d))/b {
			overflow = true
		}
		if overflow {
			u = math.MaxUint64
			continue
		}
		u = u*b + uint64(d)
	}
	if i == start {
		return false, 0, 0, false
	}
	return neg, u, i, overflow
}

// Strtol is strtol(s, &end, base) for base 0, 8, 10 or 16: n is clamped to
// the int64 range with overflow set (ERANGE); end is the index after the
// last digit, 0 when there is none.
func Strtol(s string, base int) (n int64, end int, overflow bool) {
	neg, u, end, overflow := scan(s, base)
	switch {
	case overflow, !neg && u > math.MaxInt64, neg && u > 1<<63:
		if neg {
			return math.MinInt64, end, true
		}
		return math.MaxInt64, end, true
	case neg:
		return -int64(u), end, false // 1<<63 wraps to MinInt64, as it should
	}
	return int64(u), end, false
}

// Strtoul is strtoul(s, &end, base) for base 0, 8, 10 or 16: MaxUint64
// with overflow set on ERANGE, a negative number wrapped as C wraps it.
func Strtoul(s string, base int) (u uint64, end int, overflow bool) {
	neg, u, end, overflow := scan(s, base)
	switch {
	case overflow:
		return math.MaxUint64, end, true
	case neg:
		return -u, end, false
	}
	return u, end, false
}
