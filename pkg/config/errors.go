package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrIncludeLoop is wrapped by the [ParseError] of an include that would read
// a file already being read.
var ErrIncludeLoop = errors.New("include loop")

// ParseError is one problem in a configuration file: where it is, the word it
// is about (a keyword or a value) and what is wrong. Err, if set, is the
// cause: [ErrIncludeLoop] or an I/O error.
type ParseError struct {
	File string
	Line int
	Word string
	Msg  string
	Err  error
}

// Error reads `file:line: msg "word"`.
func (e *ParseError) Error() string {
	return formatProblem(e.File, e.Line, e.Msg, e.Word)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ErrorList is what Parse and ParseBytes return when a file has errors: every
// error found, in the order found. errors.As(err, &pe) with pe a *ParseError
// yields the first.
type ErrorList []*ParseError

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Warning is a problem keepalived would log and carry on from: a keyword xlb
// does not implement, a deprecated alias, or a setting keepalived corrects
// (such as nopreempt with state MASTER). Warnings never stop a parse.
type Warning struct {
	File string
	Line int
	Word string
	Msg  string
	// Then says what keepalived, and xlb, do about it ("ignored, as
	// keepalived ignores it"); "" when Msg says it.
	Then string
	// Unlike says keepalived acts on what xlb ignores here (a keyword
	// xlb does not implement): xlb will behave differently from keepalived.
	Unlike bool
}

// String reads `file:line: msg "word"`, like ParseError, followed by
// ": then" if Then is set.
func (w Warning) String() string {
	s := formatProblem(w.File, w.Line, w.Msg, w.Word)
	if w.Then != "" {
		s += ": " + w.Then
	}
	return s
}

// Strict turns warnings into errors (xlb check/run --strict), each
// saying what it is without what keepalived would do about it.
func Strict(warns []Warning) ErrorList {
	out := make(ErrorList, len(warns))
	for i, w := range warns {
		out[i] = w.strict()
	}
	return out
}

func (w Warning) strict() *ParseError {
	return &ParseError{File: w.File, Line: w.Line, Word: w.Word, Msg: w.Msg}
}

func formatProblem(file string, line int, msg, word string) string {
	if file == "" {
		// About the configuration as a whole (scripts.Secure's summary).
		if word == "" {
			return msg
		}
		return fmt.Sprintf("%s %q", msg, word)
	}
	if word == "" {
		return fmt.Sprintf("%s:%d: %s", file, line, msg)
	}
	if len(word) > maxQuote {
		// A word of megabytes makes a log line of megabytes: quote its
		// start and say how long it is.
		return fmt.Sprintf("%s:%d: %s %q... (%d bytes)", file, line, msg, strings.ToValidUTF8(word[:maxQuote], ""), len(word))
	}
	return fmt.Sprintf("%s:%d: %s %q", file, line, msg, word)
}

// maxQuote is how much of a word a message quotes.
const maxQuote = 80

// Pos is where something was defined: the file and line of its keyword.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }
