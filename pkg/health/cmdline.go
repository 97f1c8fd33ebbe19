package health

import (
	"errors"
	"fmt"
	"strings"

	"github.com/xlbproject/xlb/internal/cnum"
)

// whiteSpace separates words; keepalived's WHITE_SPACE_STR.
const whiteSpace = " \t\f\n\r\v"

// SplitCommand splits a script command line (misc_path, notify, script) into
// its argument vector the way keepalived does (alloc_strvec_quoted_escaped),
// without a shell: words are separated by white space; '...' and "..." quote
// white space and the other quote character; a backslash escapes inside and
// outside quotes alike, with \a \b \E \f \n \r \t \v, \cX (control-X),
// \xHH... (every hex digit that follows, keeping the low byte), \N, \NN, \NNN
// (octal) and \ followed by any other character standing for that character.
// Quotes join with the text around them: a"b c"d is one word, ab cd. Nothing
// else is special: no $, globbing, ~ or ;.
func SplitCommand(s string) ([]string, error) {
	var args []string
	i := 0
	for {
		for i < len(s) && strings.IndexByte(whiteSpace, s[i]) >= 0 {
			i++
		}
		if i >= len(s) {
			break
		}
		var word []byte
		var quote byte
	scan:
		for i < len(s) {
			c := s[i]
			switch {
			case c == '\\':
				i++
				if i >= len(s) {
					return nil, fmt.Errorf("command %q: missing character after \\ at the end", s)
				}
				b, n := unescape(s[i:])
				word = append(word, b)
				i += n
			case quote != 0:
				if c != quote {
					word = append(word, c)
				} else {
					quote = 0
				}
				i++
			case c == '"' || c == '\'':
				quote = c
				i++
			case strings.IndexByte(whiteSpace, c) >= 0:
				break scan
			default:
				word = append(word, c)
				i++
			}
		}
		if quote != 0 {
			return nil, fmt.Errorf("command %q: missing terminating %c", s, quote)
		}
		args = append(args, string(word))
	}
	if len(args) == 0 {
		return nil, errors.New("empty command")
	}
	return args, nil
}

// unescape decodes the escape at the start of s (just after the backslash)
// and returns its byte and how many bytes of s it used.
func unescape(s string) (byte, int) {
	switch c := s[0]; {
	case c == 'x' && len(s) > 1 && cnum.HexDigit(s[1]) >= 0:
		var b byte
		n := 1
		for ; n < len(s); n++ {
			d := cnum.HexDigit(s[n])
			if d < 0 {
				break
			}
			b = b<<4 | byte(d)
		}
		return b, n
	case c == 'c' && len(s) > 1:
		return s[1] & 0x1f, 2
	case c >= '0' && c <= '7':
		b, n := c-'0', 1
		for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
			b = b<<3 + (s[n] - '0')
			n++
		}
		return b, n
	default:
		if e, ok := simpleEscapes[c]; ok {
			return e, 1
		}
		return c, 1
	}
}

var simpleEscapes = map[byte]byte{
	'a': '\a', 'b': '\b', 'E': 0x1b, 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v',
}
