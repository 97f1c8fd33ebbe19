// Package ipvsadm is ipvsadm's command language and output, so that xlbadm
// can take the command lines LVS operators type and scripts send, and print
// tables byte for byte as ipvsadm prints them.
//
// It reproduces ipvsadm 1.31 (as built by Debian, with popt): [Parse] takes
// a command line with ipvsadm's grammar, defaults, checks, messages and exit
// statuses ([ExitCode]); [State] is the table the kernel would hold, which
// [State.Apply] changes with the kernel's checks and errors and whose
// listings ([State.List], [State.Save], [State.ListConns], ...) are
// ipvsadm's formats; [State.Restore] runs ipvsadm-save output back in.
//
// Where ipvsadm and its documentation differ, ipvsadm wins: -p without a
// value is 360 seconds, not the man page's 300; weights go up to 2^31-1.
// Where ipvsadm crashes (an -b of commas only), this package returns an
// error instead. Where ipvsadm consults the system, this package asks the
// caller: host and port names are accepted only through [Parser] lookups
// and printed only through a [Resolver]; without them input must be
// numeric and output is numeric even without -n.
//
// Listings are sorted as ipvsadm sorts them (see sort.go for the
// wrap-around in its comparisons); --nosort keeps the order of
// [State.Services], which is insertion order where the kernel would use
// its hash order.
//
// The package is pure: no I/O but the io.Writer and io.Reader it is given,
// no clock, no kernel access.
package ipvsadm
