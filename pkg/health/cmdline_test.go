package health

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"/bin/check", []string{"/bin/check"}},
		{"  /bin/check\t a  b \n", []string{"/bin/check", "a", "b"}},
		{`/bin/check "a b" 'c d'`, []string{"/bin/check", "a b", "c d"}},
		{`x "it's" 'say "hi"'`, []string{"x", "it's", `say "hi"`}},
		{`x a"b c"d`, []string{"x", "ab cd"}},
		{`x "" ''`, []string{"x", "", ""}},
		{`x a\ b \"q\" \\`, []string{"x", "a b", `"q"`, `\`}},
		{`x "\"in\" \t" '\''`, []string{"x", "\"in\" \t", "'"}}, // escapes work inside quotes too
		{`x \a\b\E\f\n\r\t\v`, []string{"x", "\a\b\x1b\f\n\r\t\v"}},
		{`x \x41\x4a2 \x4 \xg`, []string{"x", "A\xa2", "\x04", "xg"}}, // \x takes every hex digit
		{`x \101\0\7777`, []string{"x", "A\x00\xff7"}},                // \NNN keeps the low byte
		{`x \cA\c[ \c`, []string{"x", "\x01\x1b", "c"}},
		{`x $HOME ; ls | wc > f *`, []string{"x", "$HOME", ";", "ls", "|", "wc", ">", "f", "*"}},
	} {
		got, err := SplitCommand(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	for _, in := range []string{"", "   ", `x "a`, `x 'a`, `x \`, `x "a\"`} {
		_, err := SplitCommand(in)
		assert.Error(t, err, in)
	}
}

// FuzzSplitCommand: SplitCommand never panics, never returns an empty
// vector without an error, and splits a line without quotes or backslashes
// as strings.FieldsFunc on keepalived's white space does.
func FuzzSplitCommand(f *testing.F) {
	f.Add(`/bin/check "a b" 'c d' \x41`)
	f.Fuzz(func(t *testing.T, s string) {
		args, err := SplitCommand(s)
		if err != nil {
			return
		}
		require.NotEmpty(t, args)
		if !strings.ContainsAny(s, `"'\`) {
			want := strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(whiteSpace, r) })
			require.Equal(t, want, args)
		}
	})
}

// FuzzDNSQuery: a query that marshals has a header, the name's labels as
// given, and the type and class at the end.
func FuzzDNSQuery(f *testing.F) {
	f.Add(uint16(1), "www.example.org", uint16(1))
	f.Fuzz(func(t *testing.T, id uint16, name string, typ uint16) {
		b, err := dnsQuery{ID: id, Name: name, Type: typ}.MarshalBinary()
		if err != nil {
			return
		}
		var h dnsHeader
		require.NoError(t, h.UnmarshalBinary(b))
		require.Equal(t, dnsHeader{ID: id, Flags: dnsFlagRD, QDCount: 1}, h)
		require.LessOrEqual(t, len(b)-dnsHeaderLen-4, 255)
		var labels []string
		p := b[dnsHeaderLen:]
		for p[0] != 0 {
			n := int(p[0])
			require.LessOrEqual(t, n, 63)
			labels = append(labels, string(p[1:1+n]))
			p = p[1+n:]
		}
		require.Equal(t, []byte{0, byte(typ >> 8), byte(typ), 0, 1}, p)
		if name == "." {
			require.Empty(t, labels)
		} else {
			require.Equal(t, strings.TrimSuffix(name, "."), strings.Join(labels, "."))
		}
	})
}

// FuzzParseStatusLine: parseStatusLine never panics and returns a
// three-digit code when it accepts a line.
func FuzzParseStatusLine(f *testing.F) {
	f.Add("HTTP/1.1 200 OK")
	f.Fuzz(func(t *testing.T, line string) {
		code, err := parseStatusLine(line)
		if err == nil {
			require.GreaterOrEqual(t, code, 100)
			require.LessOrEqual(t, code, 999)
		}
	})
}
