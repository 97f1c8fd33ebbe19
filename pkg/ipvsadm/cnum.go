package ipvsadm

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/xlbproject/xlb/internal/cnum"
)

// This file holds the C library conversions whose exact acceptance rules
// decide what ipvsadm takes as a number or an address: strtol, atoi,
// inet_aton, inet_pton and inet_ntop, as glibc implements them.

func utoa(v uint64) string { return strconv.FormatUint(v, 10) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// strtol10 is strtol(s, &end, 10): leading white space, an optional sign,
// decimal digits; clamped with overflow set as strtol sets ERANGE; end is
// 0 when there were no digits.
func strtol10(s string) (n int64, end int, overflow bool) { return cnum.Strtol(s, 10) }

// stringToNumber is ipvsadm's string_to_number: a whole-string strtol in
// [min, max], or -1.
func stringToNumber(s string, min, max int64) int64 {
	n, end, overflow := strtol10(s)
	if end == 0 || end != len(s) || overflow || n < min || n > max {
		return -1
	}
	return n
}

// atoi is C's atoi on an LP64 machine: strtol truncated to int.
func atoi(s string) int32 {
	n, _, _ := strtol10(s)
	return int32(n)
}

// strtoul0 is strtoul(s, &end, 0) on a string that starts with a digit:
// 0x for hex, a leading 0 for octal, decimal otherwise.
func strtoul0(s string) (v uint64, end int, overflow bool) { return cnum.Strtoul(s, 0) }

// inetAton is glibc's inet_aton: one to four parts, each decimal, octal or
// hex, the last filling the remaining bytes ("10.1" is 10.0.0.1); trailing
// white space and anything after it are ignored.
func inetAton(s string) (uint32, bool) {
	var parts [3]uint32
	np := 0
	var val uint64
	for {
		if s == "" || !isDigit(s[0]) {
			return 0, false
		}
		v, end, overflow := strtoul0(s)
		if overflow || v > 0xffffffff {
			return 0, false
		}
		val = v
		s = s[end:]
		if s == "" || s[0] != '.' {
			break
		}
		if np > 2 || val > 0xff {
			return 0, false
		}
		parts[np] = uint32(val)
		np++
		s = s[1:]
	}
	if s != "" && !cnum.IsSpace(s[0]) {
		return 0, false
	}
	max := [4]uint64{0xffffffff, 0xffffff, 0xffff, 0xff}
	if val > max[np] {
		return 0, false
	}
	addr := uint32(val)
	for i := 0; i < np; i++ {
		addr |= parts[i] << (24 - 8*uint(i))
	}
	return addr, true
}

// inetPton4 is inet_pton(AF_INET): exactly four decimal octets, no leading
// zeros.
func inetPton4(s string) (netip.Addr, bool) {
	var b [4]byte
	n := 0
	seen := false
	cur := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			if seen && cur == 0 {
				return netip.Addr{}, false
			}
			cur = cur*10 + int(c-'0')
			if cur > 255 {
				return netip.Addr{}, false
			}
			if !seen {
				if n == 4 {
					return netip.Addr{}, false
				}
				n++
				seen = true
			}
			b[n-1] = byte(cur)
		case c == '.' && seen:
			if n == 4 {
				return netip.Addr{}, false
			}
			seen, cur = false, 0
		default:
			return netip.Addr{}, false
		}
	}
	if n < 4 || !seen {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(b), true
}

// inetPton6 is inet_pton(AF_INET6): no zone, at most one "::", groups of up
// to four hex digits, an optional dotted IPv4 tail. The result is always an
// IPv6 address, IPv4-mapped ones included.
func inetPton6(s string) (netip.Addr, bool) {
	if !strings.Contains(s, ":") || strings.ContainsAny(s, "%/ \t\n") {
		return netip.Addr{}, false
	}
	// Without zones, netip's grammar is glibc's: both refuse a second
	// "::", five-digit groups and leading zeros in the dotted tail.
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// inetNtop formats an address as glibc's inet_ntop does. For IPv6 that
// differs from netip's String only for the deprecated IPv4-compatible
// forms (::a.b.c.d), which glibc prints with a dotted tail.
func inetNtop(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	var w [8]uint16
	for i := range w {
		w[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	// Longest run of zero words, first one on a tie, at least two long.
	best, bestLen := -1, 0
	for i := 0; i < 8; {
		if w[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && w[j] == 0 {
			j++
		}
		if j-i > bestLen {
			best, bestLen = i, j-i
		}
		i = j
	}
	if bestLen < 2 {
		best = -1
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if best >= 0 && i >= best && i < best+bestLen {
			if i == best {
				sb.WriteByte(':')
			}
			continue
		}
		if i != 0 {
			sb.WriteByte(':')
		}
		if i == 6 && best == 0 && (bestLen == 6 || (bestLen == 5 && w[5] == 0xffff)) {
			sb.WriteString(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}).String())
			break
		}
		sb.WriteString(strconv.FormatUint(uint64(w[i]), 16))
	}
	if best >= 0 && best+bestLen == 8 {
		sb.WriteByte(':')
	}
	return sb.String()
}

// inetNtoa is inet_ntoa on a mask held with the first octet high.
func inetNtoa(v uint32) string {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}
