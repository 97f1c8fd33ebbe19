package ipvsadm

import (
	"bufio"
	"errors"
	"io"
	"strings"
)

// SplitRestore splits ipvsadm -R input into command lines the way
// ipvsadm's config_stream_read does: words separated by spaces, tabs and
// carriage returns, one command per line, blank lines skipped, and any
// word that is exactly "ipvsadm" dropped (so "ipvsadm -A ..." lines work).
// There is no comment syntax: ipvsadm's '#' handling never triggers, and a
// '#' word reaches the parser like any other.
func SplitRestore(r io.Reader) ([][]string, []int, error) {
	var lines [][]string
	var nums []int
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		var words []string
		for _, w := range strings.FieldsFunc(sc.Text(), func(c rune) bool {
			return c == ' ' || c == '\t' || c == '\r'
		}) {
			if w != "ipvsadm" {
				words = append(words, w)
			}
		}
		if len(words) > 0 {
			lines = append(lines, words)
			nums = append(nums, n)
		}
	}
	return lines, nums, sc.Err()
}

// RestoreError reports the lines of a restore that failed in the kernel
// (here: in [State.Apply]). ipvsadm prints each message and carries on, and
// its exit status is the last line's: Code, which may be 0.
type RestoreError struct {
	Errs []*Error
	Code int
}

func (e *RestoreError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Msg
	}
	return strings.Join(msgs, "\n")
}

func (e *RestoreError) Unwrap() []error {
	errs := make([]error, len(e.Errs))
	for i, err := range e.Errs {
		errs[i] = err
	}
	return errs
}

// Restore runs ipvsadm -R: every command line of r in turn, with p's
// parser, against the table; listing lines write to w. As in ipvsadm, a
// line that does not parse (or a nested -R) stops the restore with that
// line's error, the lines before it applied; -h or -v stops it with the
// text written and no error; a line the table refuses is reported in a
// [*RestoreError] and the rest still run.
func (s *State) Restore(w io.Writer, r io.Reader, p Parser) error {
	lines, nums, err := SplitRestore(r)
	if err != nil {
		return err
	}
	var failed []*Error
	code := 0
	for i, args := range lines {
		cmd, err := p.Parse(args)
		if err == nil && cmd.Kind == CmdRestore {
			err = tryHelpErr()
		}
		if err != nil {
			return withLine(err, nums[i])
		}
		err = s.Exec(w, cmd)
		if cmd.Kind == CmdHelp || cmd.Kind == CmdVersion {
			return err
		}
		code = ExitCode(err)
		if err == nil {
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			return err
		}
		if cmd.Kind == CmdList {
			return withLine(err, nums[i]) // ipvsadm exits on a failed listing
		}
		le := *e
		le.Line = nums[i]
		failed = append(failed, &le)
	}
	if len(failed) > 0 {
		return &RestoreError{Errs: failed, Code: code}
	}
	return nil
}

func withLine(err error, line int) error {
	var e *Error
	if errors.As(err, &e) {
		le := *e
		le.Line = line
		return &le
	}
	return err
}
