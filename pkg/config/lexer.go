package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/xlbproject/xlb/internal/cnum"
)

// keepalived reads its configuration a line at a time. After comments are
// stripped, a line is cut at its first '{' or '}' outside double quotes, and
// the brace and whatever follows it are read as further lines. A "logical
// line" here is one of those pieces: a brace on its own, or a keyword and its
// arguments. Line numbers stay those of the physical line.
type line struct {
	pos   Pos
	brace byte     // '{' or '}' for a brace line, else 0
	words []string // keyword and arguments (double quotes removed)
	raw   string   // the text the words came from, re-read for scripts
}

// source is the file system includes are read from. Parse uses the real one;
// tests and the fuzzer use a map so that they never touch the disk.
type source interface {
	// ReadFile returns the text of a file (the lines' words are
	// substrings of it).
	ReadFile(name string) (string, error)
	// Glob returns the sorted names matching pattern (filepath.Match syntax).
	Glob(pattern string) ([]string, error)
	Stat(name string) (fs.FileInfo, error)
	// Key names a file uniquely, for include loop detection.
	Key(name string) string
}

type osSource struct{}

func (osSource) ReadFile(name string) (string, error)  { return readFile(name) }
func (osSource) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }
func (osSource) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

func (osSource) Key(name string) string {
	if abs, err := filepath.Abs(name); err == nil {
		name = abs
	}
	if real, err := filepath.EvalSymlinks(name); err == nil {
		name = real
	}
	return name
}

// Bounds on what a configuration may hold. keepalived has none; these are
// far above real files (157 services in 6,874 lines is 200 KB; 10,000
// services of 32 reals each about 40 MB) and keep a wrong file (a device,
// a log, a sparse gigabyte) from taking the daemon's memory or time.
const (
	// MaxFileSize bounds each file, the main one and each include.
	MaxFileSize = 64 << 20
	// MaxTotalSize bounds all the files of one configuration together.
	MaxTotalSize = 256 << 20
	// MaxLines bounds the keyword and brace lines of a configuration
	// (a virtual_server with 32 reals and their checkers is about 200).
	MaxLines = 4 << 20
)

// maxStrays is how many top-level lines that start with no top-level
// keyword a file may have before it is taken for something else than a
// configuration.
const maxStrays = 1000

// topKeyword are the keywords keepalived reads at the top level.
var topKeyword = func() map[string]bool {
	m := map[string]bool{}
	for _, kw := range keepalivedKeywords[ctxTop] {
		m[kw] = true
	}
	for kw := range includeKeywords {
		m[kw] = true
	}
	return m
}()

// readFile reads a configuration file: a regular file of at most
// MaxFileSize. It is opened without blocking, so a FIFO in its place is
// refused rather than waited on. The text is read into one buffer, never
// regrown nor copied.
func readFile(name string) (string, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file (%s)", name, fi.Mode().Type())
	}
	if fi.Size() > MaxFileSize {
		return "", fmt.Errorf("%s is %d bytes; a configuration file may have %d", name, fi.Size(), MaxFileSize)
	}
	// Its size, and a byte to see it grow.
	var b strings.Builder
	b.Grow(int(fi.Size()) + 1)
	n, err := io.Copy(&b, io.LimitReader(f, fi.Size()+1))
	if err != nil {
		return "", err
	}
	if n > fi.Size() {
		return "", fmt.Errorf("%s grew while read", name)
	}
	return b.String(), nil
}

// memSource is an in-memory file system: name -> contents. Every file is a
// regular, non-executable file.
type memSource map[string]string

func (m memSource) ReadFile(name string) (string, error) {
	if s, ok := m[name]; ok {
		return s, nil
	}
	return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (m memSource) Glob(pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, err
	}
	var out []string
	for name := range m {
		if ok, _ := path.Match(pattern, name); ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (memSource) Key(name string) string { return path.Clean(name) }

func (m memSource) Stat(name string) (fs.FileInfo, error) {
	if _, ok := m[name]; ok {
		return nil, nil
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

// maxLineLength bounds a line after parameter substitution (keepalived's
// own buffer is far smaller).
const maxLineLength = 64 << 10

// maxIncludeDepth bounds nesting even without a loop (a glob can match
// ever-new names only on a changing disk, but be safe).
const maxIncludeDepth = 32

// The include keyword and its checking variants (keepalived 2.2: includer,
// includem, includew, includeb, includea). Plain include only logs problems.
var includeKeywords = map[string]bool{
	"include": true, "includer": true, "includem": true,
	"includew": true, "includeb": true, "includea": true,
}

type lexer struct {
	src    source
	p      *problems
	total  int               // bytes of all files read
	strays int               // top-level lines with no top-level keyword
	defs   map[string]string // $NAME=value parameter definitions
	stack  []string          // files being read, outermost first
	keys   []string          // src.Key of each file in stack
	// tree nests the logical lines as they are read; nlines counts them.
	tree   *treeBuilder
	nlines int
	// words holds the words of the line being read.
	words []string
	// lim bounds the servers; vs and rs count them.
	lim    Limits
	vs, rs int
	// configID selects the conditional lines (@id) read.
	configID string
	// multi are the multi-line parameter definitions ($NAME=... \), their
	// lines; multiName is the one being read.
	multi     map[string][]string
	multiName string
	// seqReads counts the lines ~SEQ sequences have read.
	seqReads int
}

// continueDefinition adds a line to the multi-line definition being read:
// keepalived drops the trailing "\" and the blanks before it, skips a line
// left empty, and ends the definition at a line without "\".
func (lx *lexer) continueDefinition(s string) {
	more := strings.HasSuffix(s, `\`)
	if more {
		s = trimBlanks(strings.TrimSuffix(s, `\`))
	}
	if s != "" {
		lx.multi[lx.multiName] = append(lx.multi[lx.multiName], s)
	}
	if !more {
		lx.multiName = ""
	}
}

// multiLine returns the lines of the multi-line definition s names, when s
// is "$NAME" or "${NAME}" alone: keepalived expands one nowhere else.
func (lx *lexer) multiLine(s string) ([]string, bool) {
	if len(lx.multi) == 0 || !strings.HasPrefix(s, "$") {
		return nil, false
	}
	name := s[1:]
	if strings.HasPrefix(name, "{") && strings.HasSuffix(name, "}") {
		name = name[1 : len(name)-1]
	}
	lines, ok := lx.multi[name]
	return lines, ok
}

// count refuses the server that passes lim, and stops the reading there.
func (lx *lexer) count(pos Pos, kw string) {
	var n, max int
	var what, flag string
	switch kw {
	case "virtual_server":
		lx.vs++
		n, max, what, flag = lx.vs, lx.lim.VirtualServers, "virtual servers", lx.lim.VirtualFlag
	case "real_server":
		lx.rs++
		n, max, what, flag = lx.rs, lx.lim.RealServers, "real servers (counted per virtual server)", lx.lim.RealFlag
	default:
		return
	}
	if max > 0 && n > max {
		lx.p.errorf(pos, kw, "the configuration has more than %d %s; %s holds %d (%s); stopped reading at", max, what, lx.lim.Holder, max, flag)
		lx.p.stop = true
	}
}

// emit hands a logical line to the tree, as it is read: the lines are
// never held all at once, so a read stopped early (a limit passed) has
// cost only what it read.
func (lx *lexer) emit(l line) {
	lx.nlines++
	lx.tree.add(l)
}

// lexFile emits the logical lines of one file, with its includes expanded
// in place. Braces must balance within each file.
func (lx *lexer) lexFile(name string, data string) {
	lx.total += len(data)
	if lx.total > MaxTotalSize {
		lx.p.errorf(Pos{File: name}, name, "the configuration's files pass %d bytes together at", MaxTotalSize)
		return
	}
	lx.stack = append(lx.stack, name)
	lx.keys = append(lx.keys, lx.src.Key(name))
	defer func() {
		lx.stack = lx.stack[:len(lx.stack)-1]
		lx.keys = lx.keys[:len(lx.keys)-1]
	}()

	type opener struct {
		pos Pos
		kw  string
	}
	var open []opener
	// The keyword of the last words line, if it was the last line, and
	// where it was: a block is reported by its keyword.
	prevKW, prevPos := "", Pos{}

	emitWords := func(pos Pos, text string) {
		words, err := appendWords(lx.words[:0], text)
		if words != nil {
			lx.words = words // to reuse: the tree copies the words it keeps
		}
		if err != nil {
			lx.p.errorf(pos, text, "%v in", err)
			prevKW = ""
			return
		}
		if len(words) == 0 {
			return
		}
		if len(open) == 0 && len(lx.stack) == 1 && !topKeyword[words[0]] {
			// Garbage at the top level (a log, a binary): stop before
			// it has cost a tree of it.
			if lx.strays++; lx.strays > maxStrays {
				lx.p.errorf(pos, words[0], "more than %d unknown top-level keywords: not a keepalived configuration; stopped at", maxStrays)
				lx.p.stop = true
				return
			}
		}
		lx.count(pos, words[0])
		if lx.p.stop {
			return
		}
		lx.emit(line{pos: pos, words: words, raw: text})
		prevKW, prevPos = words[0], pos
	}
	emitBrace := func(pos Pos, b byte) {
		if b == '{' {
			if prevKW == "" {
				open = append(open, opener{pos, "{"})
			} else {
				open = append(open, opener{prevPos, prevKW})
			}
		} else {
			if len(open) == 0 {
				if len(lx.stack) > 1 {
					// xlb balances braces per file.
					lx.p.errorf(pos, "}", "closes no block opened in this file:")
				} else {
					// keepalived: "Extra '}' found", and reads on.
					lx.p.warn(Warning{File: pos.File, Line: pos.Line, Word: "}", Msg: "closes no block:", Then: "ignored, as keepalived ignores an extra '}'"})
				}
				prevKW = ""
				return
			}
			open = open[:len(open)-1]
		}
		lx.emit(line{pos: pos, brace: b})
		prevKW = ""
	}

	// The lines' words are substrings of the file's text.
	rest := data
	for i := 0; rest != ""; i++ {
		phys, after, _ := strings.Cut(rest, "\n")
		rest = after
		phys = strings.TrimSuffix(phys, "\r")
		if lx.p.full() {
			return // a hopeless file: stop reading it
		}
		if lx.nlines >= MaxLines {
			lx.p.errorf(Pos{File: name, Line: i + 1}, name, "more than %d lines in the configuration: stopped at", MaxLines)
			return
		}
		pos := Pos{File: name, Line: i + 1}
		s, err := decomment(phys)
		if err != nil {
			lx.p.errorf(pos, trimBlanks(phys), "%v in", err)
			continue
		}
		if s == "" {
			continue
		}
		if lx.multiName != "" {
			lx.continueDefinition(s)
			continue
		}
		// handle reads one logical line, as keepalived's read_line does:
		// @id conditions, ~SEQ sequences (the rest of the line once per
		// value), a multi-line definition alone on its line (its lines),
		// definitions and substitution, include, then the words.
		var handle func(s string, depth int)
		handle = func(s string, depth int) {
			if depth > maxNesting {
				lx.p.errorf(pos, s, "~SEQ sequences and multi-line definitions nested more than %d deep in", maxNesting)
				return
			}
			if lx.nlines >= MaxLines {
				if !lx.p.stop {
					lx.p.errorf(pos, name, "more than %d lines in the configuration (sequences and definitions expanded): stopped at", MaxLines)
					lx.p.stop = true
				}
				return
			}
			if s = trimBlanks(s); s == "" {
				return
			}
			s, ok := lx.conditional(s)
			if !ok || s == "" {
				return
			}
			if strings.HasPrefix(s, "~SEQ") {
				lx.sequence(pos, s, func(t string) { handle(t, depth+1) })
				return
			}
			if strings.HasPrefix(s, "~LST") {
				// Ignoring it would drop what keepalived makes of it.
				lx.p.errorf(pos, "~LST", "~LST lists are not supported by xlb yet (~SEQ sequences are):")
				return
			}
			if lines, ok := lx.multiLine(s); ok {
				// A multi-line definition alone on its line: its lines,
				// in its place, each read as a line of the file.
				for _, l := range lines {
					handle(l, depth+1)
				}
				return
			}
			s, ok = lx.preprocess(pos, s)
			if !ok || s == "" {
				return
			}
			if lx.include(pos, s) {
				prevKW = ""
				return
			}
			// Cut at braces outside double quotes; each brace is its own line.
			for s != "" {
				j := indexBrace(s)
				if j < 0 {
					emitWords(pos, s)
					break
				}
				if j > 0 {
					emitWords(pos, trimBlanks(s[:j]))
				}
				emitBrace(pos, s[j])
				s = trimBlanks(s[j+1:])
			}
		}
		handle(s, 0)
	}
	for _, o := range open {
		lx.p.errorf(o.pos, o.kw, `missing "}" for the block of`)
	}
	// Close what was left open so that the tree can still be built and
	// checked for further errors.
	for range open {
		lx.emit(line{pos: Pos{File: name, Line: strings.Count(data, "\n") + 1}, brace: '}'})
	}
}

// conditional applies keepalived's conditional lines: "@id rest" is read
// only when the config id is id, "@^id rest" only when it is not.
// keepalived's config id is its -i option, else the host name up to the
// first dot (xlb: --config-id). It reports whether the line is read.
func (lx *lexer) conditional(s string) (string, bool) {
	if s[0] != '@' {
		return s, true
	}
	ofs, rev := 1, false
	if strings.HasPrefix(s, "@^") {
		ofs, rev = 2, true
	}
	k := strings.IndexAny(s, " \t")
	if k < 0 {
		return "", false // nothing after the id: keepalived drops it too
	}
	if (s[ofs:k] == lx.configID) == rev {
		return "", false
	}
	rest := trimBlanks(s[k:])
	return rest, rest != ""
}

// maxNesting bounds sequences and multi-line definitions within each
// other; maxSequence the values of one ~SEQ.
const (
	maxNesting       = 8
	maxSequence      = 1 << 16
	maxSequenceReads = 1 << 20 // in all: nested sequences multiply
)

// sequence reads "~SEQ(VAR, [START,] [STEP,] END) rest" (or ~SEQx, values
// in hex) as keepalived 2.2.7's add_seq: with one number, 1 to END (or -1
// down to a negative END); with two, START to END by 1 or -1; with three,
// START, STEP, END. The parameters may use $NAME definitions. For each
// value, $VAR is defined as it (the definition stays after) and rest is
// read as a line of its own.
func (lx *lexer) sequence(pos Pos, s string, read func(string)) {
	bad := func(why string) { lx.p.errorf(pos, s, "invalid ~SEQ (%s):", why) }
	p := s[len("~SEQ"):]
	hex := strings.HasPrefix(p, "x")
	if hex {
		p = p[1:]
	}
	p = strings.TrimLeft(p, " \t")
	if !strings.HasPrefix(p, "(") {
		bad("no '('")
		return
	}
	end := strings.IndexByte(p, ')')
	if end < 0 {
		bad("no ')'")
		return
	}
	params, rest := p[1:end], trimBlanks(p[end+1:])
	if len(lx.defs) > 0 {
		params, _ = substitute(params, lx.defs)
	}
	fields := strings.Split(params, ",")
	v := trimBlanks(fields[0])
	if v == "" || strings.ContainsAny(v, " \t") || len(fields) < 2 || len(fields) > 4 {
		bad("want (VAR, END), (VAR, START, END) or (VAR, START, STEP, END)")
		return
	}
	var nums []int64
	for _, f := range fields[1:] {
		n, err := strconv.ParseInt(trimBlanks(f), 0, 64)
		if err != nil {
			bad("not a number: " + trimBlanks(f))
			return
		}
		nums = append(nums, n)
	}
	var start, step, last int64
	switch len(nums) {
	case 1:
		last = nums[0]
		start, step = 1, 1
		if last < 0 {
			start = -1
		}
		if last < 1 {
			step = -1
		}
	case 2:
		start, last, step = nums[0], nums[1], 1
		if start > last {
			step = -1
		}
	case 3:
		start, step, last = nums[0], nums[1], nums[2]
		if step == 0 || (start < last && step < 0) || (start > last && step > 0) {
			bad("the step does not lead from the start to the end")
			return
		}
	}
	if hex && (start < 0 || last < 0) {
		bad("~SEQx takes positive numbers only")
		return
	}
	if n := (last-start)/step + 1; n > maxSequence {
		bad(fmt.Sprintf("%d values; at most %d", n, maxSequence))
		return
	}
	if lx.defs == nil {
		lx.defs = map[string]string{}
	}
	for x := start; (step > 0 && x <= last) || (step < 0 && x >= last); x += step {
		if lx.seqReads++; lx.seqReads > maxSequenceReads {
			lx.p.errorf(pos, s, "~SEQ sequences read more than %d lines in all; stopped at", maxSequenceReads)
			lx.p.stop = true
			return
		}
		if hex {
			lx.defs[v] = strconv.FormatInt(x, 16)
		} else {
			lx.defs[v] = strconv.FormatInt(x, 10)
		}
		delete(lx.multi, v)
		read(rest)
		if lx.p.full() {
			return
		}
	}
}

// preprocess applies keepalived's parameter definitions ($NAME=...) and
// their substitution. It reports whether the line should be read.
func (lx *lexer) preprocess(pos Pos, s string) (string, bool) {
	if s[0] == '$' {
		if name, value, ok := parseDefinition(s); ok {
			if strings.HasSuffix(value, `\`) {
				// "$NAME=first \", then lines while they end in "\".
				if lx.multi == nil {
					lx.multi = map[string][]string{}
				}
				delete(lx.defs, name)
				lx.multi[name] = nil
				lx.multiName = name
				lx.continueDefinition(value)
				return "", false
			}
			if lx.defs == nil {
				lx.defs = map[string]string{}
			}
			delete(lx.multi, name)
			lx.defs[name] = value
			return "", false
		}
	}
	if len(lx.defs) > 0 && strings.Contains(s, "$") {
		// keepalived substitutes again while the result still has a
		// defined $NAME in it; bound that for self-referencing definitions.
		for range 16 {
			t, changed := substitute(s, lx.defs)
			if !changed {
				return s, true
			}
			if len(t) > maxLineLength {
				break
			}
			s = t
		}
		lx.p.errorf(pos, s, "parameter substitution does not terminate in")
		return "", false
	}
	return s, true
}

// include expands an include line. It reports whether s was one.
func (lx *lexer) include(pos Pos, s string) bool {
	if !strings.HasPrefix(s, "include") { // as every includeKeywords
		return false
	}
	first, _, _ := strings.Cut(s, " ")
	first, _, _ = strings.Cut(first, "\t")
	if !includeKeywords[first] {
		return false
	}
	words, err := splitWords(s)
	if err != nil || len(words) != 2 {
		// keepalived reads only "include NAME" as an include; anything else
		// goes to the keyword parser.
		return false
	}
	kw, pattern := words[0], words[1]
	// Variants turn include problems into errors (keepalived's include_check).
	report := lx.p.warnf
	if kw != "include" {
		report = lx.p.errorf
	}
	if !filepath.IsAbs(pattern) {
		// keepalived chdirs to the including file's directory.
		pattern = filepath.Join(filepath.Dir(pos.File), pattern)
	}
	pats := expandBraces(pattern)
	if len(pats) > maxBraceExpansion {
		lx.p.errorf(pos, words[1], "brace expansion gives more than %d names:", maxBraceExpansion)
		return true
	}
	var matches []string
	for _, pat := range pats {
		m, err := lx.src.Glob(pat)
		if err != nil {
			lx.p.errorf(pos, words[1], "bad glob: %v:", err)
			return true
		}
		if len(m) == 0 && (kw == "includeb" || kw == "includea") && pat != pattern {
			lx.p.errorf(pos, words[1], "brace alternative %q matches no file in", pat)
		}
		matches = append(matches, m...)
	}
	if len(matches) == 0 {
		wild := strings.ContainsAny(words[1], "*?[")
		if kw == "includew" || kw == "includea" || (kw == "includem" && !wild) {
			lx.p.errorf(pos, words[1], "no file matches")
		} else {
			lx.p.warnf(pos, words[1], "no file matches")
		}
		return true
	}
	for _, m := range matches {
		fi, err := lx.src.Stat(m)
		if err != nil {
			report(pos, m, "cannot read included file: %v:", err)
			continue
		}
		if fi != nil {
			if fi.IsDir() {
				continue
			}
			// keepalived reads only regular, non-executable files.
			if !fi.Mode().IsRegular() || fi.Mode()&0o111 != 0 {
				report(pos, m, "skipping an included file that is not a regular non-executable file:")
				continue
			}
		}
		if slices.Contains(lx.keys, lx.src.Key(m)) {
			chain := strings.Join(append(slices.Clone(lx.stack), m), " -> ")
			lx.p.add(&ParseError{File: pos.File, Line: pos.Line, Word: words[1],
				Msg: "include loop (" + chain + ") at", Err: ErrIncludeLoop})
			continue
		}
		if len(lx.stack) >= maxIncludeDepth {
			lx.p.errorf(pos, words[1], "includes nested more than %d deep at", maxIncludeDepth)
			continue
		}
		data, err := lx.src.ReadFile(m)
		if err != nil {
			if kw == "include" {
				lx.p.warnf(pos, m, "cannot read included file: %v:", err)
			} else {
				lx.p.add(&ParseError{File: pos.File, Line: pos.Line, Word: m,
					Msg: fmt.Sprintf("cannot read included file: %v:", err), Err: err})
			}
			continue
		}
		lx.lexFile(m, data)
	}
	return true
}

// decomment strips a comment (from '#' or '!' outside double quotes) and
// surrounding blanks. A backslash outside quotes makes the next '#' or '!'
// literal.
func decomment(s string) (string, error) {
	if !hasCommentOrQuote(s) {
		return trimBlanks(s), nil // most lines: no copy
	}
	var b strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQuote = !inQuote
		case c == '\\' && i+1 < len(s):
			if !inQuote && (s[i+1] == '#' || s[i+1] == '!') {
				b.WriteByte(s[i+1])
			} else {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
			continue
		case !inQuote && (c == '#' || c == '!'):
			return trimBlanks(b.String()), nil
		}
		b.WriteByte(c)
	}
	if inQuote {
		return "", errors.New("unterminated quote")
	}
	return trimBlanks(b.String()), nil
}

// hasCommentOrQuote is strings.ContainsAny(s, "\"\\#!"), without building
// the set at each call.
func hasCommentOrQuote(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"', '\\', '#', '!':
			return true
		}
	}
	return false
}

// indexBrace returns the index of the first '{' or '}' outside double quotes.
func indexBrace(s string) int {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQuote = !inQuote
		case '{', '}':
			if !inQuote {
				return i
			}
		}
	}
	return -1
}

// trimBlanks trims what keepalived's isspace() trims: ASCII blanks only.
// A no-break space (U+00A0, pasted from a web page) is not one: keepalived
// reads it as part of the word it touches, and so does xlb.
func trimBlanks(s string) string {
	// strings.Trim with a cutset builds the set at each call: for each
	// line, several times.
	for s != "" && isBlank(s[0]) {
		s = s[1:]
	}
	for s != "" && isBlank(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r' || c == '\n'
}

// splitWords splits a line the way keepalived splits every configuration
// line: at blanks, with a word that starts with '"' running to the next '"'
// (blanks kept, quotes dropped). An unquoted word also ends at a '"'.
func splitWords(s string) ([]string, error) {
	return appendWords(nil, s)
}

// appendWords is splitWords appending to words.
func appendWords(words []string, s string) ([]string, error) {
	for i := 0; i < len(s); {
		if isBlank(s[i]) {
			i++
			continue
		}
		if s[i] == '"' {
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, errors.New("unterminated quote")
			}
			words = append(words, s[i+1:i+1+j])
			i += j + 2
			continue
		}
		j := i
		for j < len(s) && !isBlank(s[j]) && s[j] != '"' {
			j++
		}
		words = append(words, s[i:j])
		i = j
	}
	return words, nil
}

// splitShell splits a script command line the way keepalived does for
// scripts: blanks separate words; '...' and "..." quote (and may be glued to
// unquoted text); backslash escapes work everywhere (\a \b \E \f \n \r \t \v,
// \NNN octal, \xHH hex, \cC control characters, \C for any other C).
func splitShell(s string) ([]string, error) {
	var words []string
	for i := 0; i < len(s); {
		if isBlank(s[i]) {
			i++
			continue
		}
		var b []byte
		var quote byte
		for i < len(s) {
			c := s[i]
			switch {
			case c == '\\':
				i++
				if i >= len(s) {
					return nil, errors.New("backslash at end of script")
				}
				var r byte
				r, i = unescape(s, i)
				b = append(b, r)
				continue
			case quote != 0 && c == quote:
				quote = 0
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
			case quote == 0 && isBlank(c):
				goto done
			default:
				b = append(b, c)
			}
			i++
		}
	done:
		if quote != 0 {
			return nil, fmt.Errorf("unterminated %c quote", quote)
		}
		words = append(words, string(b))
	}
	return words, nil
}

// unescape decodes the escape whose first character (after the backslash) is
// s[i]; it returns the byte and the index after the escape.
func unescape(s string, i int) (byte, int) {
	c := s[i]
	switch {
	case c == 'x' && i+1 < len(s) && cnum.HexDigit(s[i+1]) >= 0:
		var v byte
		for i++; i < len(s); i++ {
			d := cnum.HexDigit(s[i])
			if d < 0 {
				break
			}
			v = v<<4 | byte(d)
		}
		return v, i
	case c == 'c' && i+1 < len(s):
		return s[i+1] & 0x1f, i + 2
	case c >= '0' && c <= '7':
		v := c - '0'
		i++
		for n := 0; n < 2 && i < len(s) && s[i] >= '0' && s[i] <= '7'; n++ {
			v = v<<3 + (s[i] - '0')
			i++
		}
		return v, i
	}
	switch c {
	case 'a':
		c = '\a'
	case 'b':
		c = '\b'
	case 'E':
		c = 0x1b
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'v':
		c = '\v'
	}
	return c, i + 1
}

// maxBraceExpansion bounds the names one include can expand to.
const maxBraceExpansion = 1024

// expandBraces expands csh-style alternatives, "a{b,c}d" -> "abd", "acd",
// as keepalived's glob(GLOB_BRACE) does. It stops early, returning more
// than maxBraceExpansion names, rather than expanding without bound.
func expandBraces(p string) []string {
	open := strings.IndexByte(p, '{')
	if open < 0 {
		return []string{p}
	}
	depth, parts, start := 0, []string(nil), open+1
	for i := open; i < len(p); i++ {
		switch p[i] {
		case '{':
			depth++
		case ',':
			if depth == 1 {
				parts = append(parts, p[start:i])
				start = i + 1
			}
		case '}':
			depth--
			if depth == 0 {
				parts = append(parts, p[start:i])
				var out []string
				for _, alt := range parts {
					out = append(out, expandBraces(p[:open]+alt+p[i+1:])...)
					if len(out) > maxBraceExpansion {
						break
					}
				}
				return out
			}
		}
	}
	return []string{p} // unbalanced: literal
}

func isNameStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isNameChar(c byte) bool  { return isNameStart(c) || (c >= '0' && c <= '9') }

// parseDefinition reads "$NAME=value" (blanks allowed around '=').
func parseDefinition(s string) (name, value string, ok bool) {
	if len(s) < 2 || !isNameStart(s[1]) {
		return "", "", false
	}
	i := 2
	for i < len(s) && isNameChar(s[i]) {
		i++
	}
	name = s[1:i]
	rest := strings.TrimLeft(s[i:], " \t")
	if !strings.HasPrefix(rest, "=") {
		return "", "", false
	}
	return name, trimBlanks(rest[1:]), true
}

// substitute replaces $NAME and ${NAME} for defined names; undefined ones are
// left as they are, as keepalived does.
func substitute(s string, defs map[string]string) (string, bool) {
	var b strings.Builder
	changed := false
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		j, braced := i+1, false
		if s[j] == '{' {
			braced = true
			j++
		}
		k := j
		for k < len(s) && isNameChar(s[k]) {
			k++
		}
		name := s[j:k]
		v, ok := defs[name]
		if name == "" || !ok || !isNameStart(name[0]) || (braced && (k >= len(s) || s[k] != '}')) {
			b.WriteByte(s[i])
			continue
		}
		if braced {
			k++
		}
		b.WriteString(v)
		changed = true
		i = k - 1
	}
	return b.String(), changed
}
