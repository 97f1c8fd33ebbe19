// Package health is keepalived's real-server health checking: the checkers
// TCP_CHECK, HTTP_GET, SSL_GET (with url regexes), MISC_CHECK, DNS_CHECK,
// SMTP_CHECK, UDP_CHECK, PING_CHECK and FILE_CHECK with keepalived's
// success conditions, and a Monitor that runs one real server's checkers with
// keepalived's scheduling and reports the real's up/down transitions.
//
// Each protocol is one file behind the small [Checker] interface: a Checker
// runs one check and says up or down; it never retries and keeps no state
// (FILE_CHECK keeps the last value it read, which keepalived falls back on).
// A [Watcher] also says when to check again (FILE_CHECK's inotify).
// Retries, delay_loop, alpha and the AND of several checkers are the
// [Monitor]'s, which takes its clock as a [Clock] so tests drive it without
// sleeping. The option structs are this package's own; the daemon maps
// pkg/config's Checker blocks onto them.
//
// # Semantics
//
// Where keepalived's behaviour had to be chosen, this package follows
// keepalived 2.x (check_tcp.c, check_http.c, check_misc.c, check_dns.c;
// check_smtp.c, check_udp.c, check_ping.c, check_file.c and track_file.c
// of 2.2.7):
//
//   - A failed check is retried Retry times, DelayBeforeRetry apart, before
//     the checker goes down, but only while the checker is up: a checker
//     already down (alpha's start included) is checked every DelayLoop and
//     comes up on its first success, at once.
//   - Alpha starts a checker down; otherwise it starts up. A real is up when
//     all its checkers are up; a real without checkers is always up.
//   - Only transitions are reported: up to down, down to up, and a new
//     weight: misc_dynamic's, plus what each FILE_CHECK with a weight adds
//     while it is up. Omega adds a last "down" for a real that is up
//     when the Monitor is stopped with Stop (keepalived runs notify_down and
//     quorum_down for live servers on shutdown with omega); cancelling the
//     context reports nothing more.
//   - HTTP_GET/SSL_GET send keepalived's HTTP/1.0 request and hash the raw
//     body bytes after the headers (no chunked decoding, as genhash does), up
//     to Content-Length when the server sends one. SSL_GET does not verify the
//     server's certificate. Status codes default to 200-299.
//   - MISC_CHECK: exit 0 is up, anything else down, except that with
//     misc_dynamic an exit of 2..255 is up with weight code-2. The command is
//     split into words with keepalived's quoting rules ([SplitCommand]) and
//     executed without a shell unless asked; it runs in its own process group,
//     which gets SIGTERM on timeout and SIGKILL two seconds later.
//   - DNS_CHECK sends one recursive query over UDP and is up when a response
//     with the query's ID has RCODE NOERROR, whether or not it has answers
//     (keepalived does not look at the answer section). The default query is
//     SOA for the root, keepalived's default.
//   - A url regex must match (or, with regex_no_match, must not match) the
//     body, searched as one stream between regex_min_offset and
//     regex_max_offset; pkg/config turns the PCRE2 pattern into RE2.
//   - SMTP_CHECK reads a 220 banner, says HELO and wants 250, says QUIT and
//     wants a line; a reply is its first line, so multi-line replies fail.
//   - UDP_CHECK: an ICMP destination unreachable is down; silence is up
//     unless require_reply; a reply must match require_reply's pattern.
//   - PING_CHECK: one echo, from a datagram ICMP socket where
//     ping_group_range allows and a raw socket otherwise.
//   - FILE_CHECK: a value of 0 is up and anything else down, or with a
//     weight, value*weight is added to the real's weight and only a product
//     at or below -2^31 is down.
//
// The tests send traffic to loopback only, except PING_CHECK's, which ping
// between two network namespaces they make; those and the MISC_CHECK user
// test need root and are skipped without it.
package health
