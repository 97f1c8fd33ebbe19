package ipvsadm

import (
	"errors"
	"strings"
)

// Sentinels for callers that branch on what went wrong. Every error this
// package returns is an [*Error] that wraps one of them.
var (
	// ErrTryHelp: the first option was not a command (or there was none);
	// ipvsadm prints only its "Try ... -h" line and exits 255.
	ErrTryHelp = errors.New("no command given")
	// ErrOption: popt refused an option (unknown, missing argument,
	// unwanted argument); exit 255.
	ErrOption = errors.New("bad option")
	// ErrUsage: ipvsadm's own checks refused the command line (bad address,
	// bad number, illegal option for the command, ...); exit 2.
	ErrUsage = errors.New("invalid command line")

	// The errors the kernel returns, with the messages libipvs gives them;
	// ipvsadm exits 255 after printing them.
	ErrServiceExists     = errors.New("Service already exists")
	ErrNoService         = errors.New("No such service")
	ErrServiceNotDefined = errors.New("Service not defined") // -a/-e/-d on a missing service
	ErrDestExists        = errors.New("Destination already exists")
	ErrNoDest            = errors.New("No such destination")
	ErrSchedulerNotFound = errors.New("Scheduler or persistence engine not found")
	ErrInvalid           = errors.New("Invalid operation.  Possibly wrong module version, address not unicast, ...")
	ErrRange             = errors.New("Numerical result out of range")
	// ErrNotSupported is xlb's answer to --start-daemon and
	// --stop-daemon: it has no connection sync daemon.
	ErrNotSupported = errors.New("Operation not supported")
	// --add-laddr of an address the service has, --del-laddr of one it
	// has not (DPVS answers EEXIST and ENOENT).
	ErrLaddrExists = errors.New("Local address already exists")
	ErrNoLaddr     = errors.New("No such local address")
)

// Exit statuses ipvsadm uses.
const (
	ExitOK      = 0
	ExitList    = 1   // a listing failed (e.g. -L -t of a missing service)
	ExitUsage   = 2   // ipvsadm's fail(2)
	ExitFailure = 255 // popt errors, try-help, and every kernel error
)

// Error is an error as ipvsadm reports it: Msg is exactly what it prints on
// standard error, less the final newline, and Code its exit status.
type Error struct {
	Msg  string
	Code int
	Err  error // the sentinel
	// Line is the 1-based input line for errors from [State.Restore].
	Line int
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// Message is Msg with ipvsadm's program name replaced by prog, for the
// messages that name the program (the try-help line).
func (e *Error) Message(prog string) string {
	if !errors.Is(e.Err, ErrTryHelp) || prog == "" || prog == "ipvsadm" {
		return e.Msg
	}
	return strings.ReplaceAll(e.Msg, "ipvsadm", prog)
}

// ExitCode is the exit status ipvsadm would end with after err: 0 for nil,
// the Code of an [*Error] or a [*RestoreError], 255 for anything else.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var re *RestoreError
	if errors.As(err, &re) {
		return re.Code
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ExitFailure
}

func usageErr(msg string) error {
	return &Error{Msg: msg, Code: ExitUsage, Err: ErrUsage}
}

func optionErr(badOpt, msg string) error {
	return &Error{Msg: badOpt + ": " + msg, Code: ExitFailure, Err: ErrOption}
}

func tryHelpErr() error {
	return &Error{Msg: TryHelp("ipvsadm"), Code: ExitFailure, Err: ErrTryHelp}
}

// kernelErr is a failed operation; its message is the sentinel's text.
func kernelErr(sentinel error) error {
	return &Error{Msg: sentinel.Error(), Code: ExitFailure, Err: sentinel}
}

// TryHelp is the line ipvsadm prints when it cannot make out a command.
func TryHelp(prog string) string {
	return "Try `" + prog + " -h' or '" + prog + " --help' for more information."
}
