package ipvsadm

import (
	"net/netip"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/xlbproject/xlb/pkg/lvs"
)

func TestInetNtopMatchesGlibc(t *testing.T) {
	// Right-hand sides from glibc's inet_ntop (via Python's socket module).
	for _, tt := range [][2]string{
		{"::", "::"},
		{"::1", "::1"},
		{"::1.2.3.4", "::1.2.3.4"},
		{"::ffff:1.2.3.4", "::ffff:1.2.3.4"},
		{"::ffff:0:1.2.3.4", "::ffff:0:102:304"},
		{"2001:db8::1", "2001:db8::1"},
		{"1:0:0:1:0:0:0:1", "1:0:0:1::1"},
		{"1:0:0:0:1:0:0:1", "1::1:0:0:1"},
		{"0:0:0:0:0:0:0:2", "::2"},
		{"0:0:0:0:0:1:0:0", "::1:0:0"},
		{"1::", "1::"},
		{"1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0"},
		{"0:1:2:3:4:5:6:7", "0:1:2:3:4:5:6:7"},
		{"::fffe:1.2.3.4", "::fffe:102:304"},
		{"0:0:0:0:0:ffff:0:0", "::ffff:0.0.0.0"},
		{"fe80::1:0:0:0", "fe80::1:0:0:0"},
		{"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},
		{"::0.0.0.1", "::1"},
	} {
		assert.Equal(t, tt[1], inetNtop(netip.MustParseAddr(tt[0])), tt[0])
	}
}

func TestInetAton(t *testing.T) {
	ok := map[string]string{
		"10.0.0.1": "10.0.0.1", "10.1": "10.0.0.1", "10.1.2": "10.1.0.2",
		"167772161": "10.0.0.1", "0x0a000001": "10.0.0.1", "012.0.0.1": "10.0.0.1",
		"0xA.0.0.1": "10.0.0.1", "1.2.3.4 junk": "1.2.3.4", "0": "0.0.0.0",
		"4294967295": "255.255.255.255", "1.16777215": "1.255.255.255",
	}
	for in, want := range ok {
		v, good := inetAton(in)
		if assert.True(t, good, in) {
			assert.Equal(t, want, inetNtoa(v), in)
		}
	}
	for _, in := range []string{"", "08.0.0.1", "256.0.0.1", "1.2.3.4.5", "4294967296",
		"1.16777216", " 1.2.3.4", "+1.2.3.4", "1..2", "1.2.3.", "0x", "a.b.c.d", "1.2.3.4x"} {
		_, good := inetAton(in)
		assert.False(t, good, in)
	}
}

func TestStringToNumber(t *testing.T) {
	assert.EqualValues(t, 5, stringToNumber(" 5", 0, 10))
	assert.EqualValues(t, 5, stringToNumber("+5", 0, 10))
	assert.EqualValues(t, 0, stringToNumber("-0", 0, 10))
	assert.EqualValues(t, 10, stringToNumber("010", 0, 10))
	for _, in := range []string{"", " ", "5 ", "0x5", "11", "-1", "99999999999999999999"} {
		assert.EqualValues(t, -1, stringToNumber(in, 0, 10), in)
	}
	assert.EqualValues(t, 64, atoi("64x"))
	assert.EqualValues(t, 1, atoi("4294967297"))
	assert.EqualValues(t, -1, atoi("99999999999999999999"))
}

// TestSortWrapAround pins ipvsadm's comparison quirk: addresses more than
// 2^31 apart compare by a wrapped difference.
func TestSortWrapAround(t *testing.T) {
	a := Service{Protocol: lvs.TCP, Addr: mustAddr("10.0.0.1"), Port: 80}
	b := Service{Protocol: lvs.TCP, Addr: mustAddr("192.168.0.1"), Port: 80}
	c := Service{Protocol: lvs.TCP, Addr: mustAddr("100.0.0.1"), Port: 80}
	assert.Positive(t, cmpServices(&a, &b), "10/8 after 192.168/16")
	assert.Negative(t, cmpServices(&a, &c))
	assert.Negative(t, cmpServices(&c, &b))
	got := sortedServices([]Service{a, b, c}, false)
	var order []string
	for _, s := range got {
		order = append(order, s.Addr.String())
	}
	assert.Equal(t, []string{"10.0.0.1", "100.0.0.1", "192.168.0.1"}, order)
	got = sortedServices([]Service{b, c, a}, false)
	order = order[:0]
	for _, s := range got {
		order = append(order, s.Addr.String())
	}
	assert.Equal(t, []string{"192.168.0.1", "10.0.0.1", "100.0.0.1"}, order)
}

// TestMsortMatchesGlibcQsort: what glibc 2.41's qsort made of these inputs
// with the wrapping comparison (recorded with a C program), which is not
// an order; the merge sort here must agree.
func TestMsortMatchesGlibcQsort(t *testing.T) {
	for _, tt := range [][2][6]uint32{
		{{0x20000000, 0x50000000, 0x0a000001, 0xf0000000, 0xc0a80001, 0x64000001}, {0xf0000000, 0x0a000001, 0x20000000, 0x50000000, 0x64000001, 0xc0a80001}},
		{{0x64000001, 0x20000000, 0x0a000001, 0x50000000, 0xc0a80001, 0xf0000000}, {0x0a000001, 0x20000000, 0x50000000, 0x64000001, 0xc0a80001, 0xf0000000}},
		{{0x64000001, 0x20000000, 0x50000000, 0xf0000000, 0xc0a80001, 0x0a000001}, {0xc0a80001, 0xf0000000, 0x0a000001, 0x20000000, 0x50000000, 0x64000001}},
		{{0xf0000000, 0x20000000, 0x50000000, 0x64000001, 0xc0a80001, 0x0a000001}, {0xf0000000, 0x20000000, 0x50000000, 0x64000001, 0xc0a80001, 0x0a000001}},
		{{0x50000000, 0xc0a80001, 0x20000000, 0x64000001, 0x0a000001, 0xf0000000}, {0xf0000000, 0x0a000001, 0x50000000, 0x64000001, 0xc0a80001, 0x20000000}},
	} {
		var dests []Dest
		for _, v := range tt[0] {
			dests = append(dests, Dest{Addr: inetNtoaAddr(v)})
		}
		msort(dests, cmpDests)
		var got [6]uint32
		for i, d := range dests {
			got[i] = addrWords(d.Addr)[0]
		}
		assert.Equal(t, tt[1], got)
	}
}

// TestMsortAgreesWhenTransitive: within 2^31 the comparison is an order
// and the merge sort any sort.
func TestMsortAgreesWhenTransitive(t *testing.T) {
	var dests []Dest
	for i := range 300 {
		dests = append(dests, Dest{Addr: netip.AddrFrom4([4]byte{10, byte(i * 7 % 251), byte(i % 13), byte(i)}), Port: uint16(i * 31 % 17)})
	}
	want := slices.Clone(dests)
	sort.SliceStable(want, func(i, j int) bool {
		if c := want[i].Addr.Compare(want[j].Addr); c != 0 {
			return c < 0
		}
		return want[i].Port < want[j].Port
	})
	msort(dests, cmpDests)
	assert.Equal(t, want, dests)
}
