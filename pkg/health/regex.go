package health

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// bodyMatcher matches one url's Regex against a body as it streams in.
type bodyMatcher struct {
	rx *Regex
	re *regexp.Regexp
	// matched is the outcome, once match has run: keepalived's
	// regex_matched.
	matched bool
}

func newBodyMatcher(rx *Regex) (*bodyMatcher, error) {
	expr := rx.Expr
	if rx.MinOffset > 0 {
		// PCRE2 starts at the offset but still sees the bytes before it
		// (\b, (?m)^) and never matches ^ there. Searching from the byte
		// before the offset, anchored, with the pattern as group 1 after
		// a lazy run does both: group 1 starts at the first place at or
		// after the offset where the pattern matches.
		expr = `\A(?s:.)(?s:.*?)(` + expr + `)`
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", rx.Expr, err)
	}
	return &bodyMatcher{rx: rx, re: re}, nil
}

// match reads body as far as the regex engine needs and records whether
// it matched. It returns the read error that cut the body short, if any.
func (m *bodyMatcher) match(body io.Reader) error {
	br := bufio.NewReader(body)
	skip := max(m.rx.MinOffset-1, 0)
	if skip > 0 {
		if n, err := io.CopyN(io.Discard, br, skip); n < skip {
			if errors.Is(err, io.EOF) {
				return nil // the body ends before the offset: no match
			}
			return err
		}
	}
	cr := &offsetReader{r: br, pos: skip, from: m.rx.MinOffset, firstNL: -1}
	var start int64
	if m.rx.MinOffset > 0 {
		loc := m.re.FindReaderSubmatchIndex(cr)
		if loc == nil || loc[2] < 0 {
			return cr.err
		}
		start = skip + int64(loc[2])
	} else {
		loc := m.re.FindReaderIndex(cr)
		if loc == nil {
			return cr.err
		}
		start = int64(loc[0])
	}
	switch {
	case cr.pos == 0: // keepalived never matches an empty body
	case m.rx.MaxOffset >= 0 && start > m.rx.MaxOffset:
	case m.rx.FirstLine && cr.firstNL >= 0 && start > cr.firstNL:
	default:
		m.matched = true
	}
	return cr.err
}

// offsetReader reads runes as the regexp package wants them, counting the
// bytes read and noting the first newline at or after from.
type offsetReader struct {
	r       *bufio.Reader
	pos     int64 // bytes of the body read so far
	from    int64
	firstNL int64 // -1 until seen
	err     error // a read error other than the end of the body
}

func (o *offsetReader) ReadRune() (rune, int, error) {
	r, size, err := o.r.ReadRune()
	if err != nil {
		if !errors.Is(err, io.EOF) {
			o.err = err
		}
		return r, size, err
	}
	if r == '\n' && o.firstNL < 0 && o.pos >= o.from {
		o.firstNL = o.pos
	}
	o.pos += int64(size)
	return r, size, nil
}
