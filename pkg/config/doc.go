// Package config reads keepalived.conf the way keepalived 2.2 reads it, so
// that a site running LVS/IPVS + keepalived can start xlb on its existing
// configuration.
//
// [Parse] returns a [Config]: the global_defs, vrrp_script, track_file,
// vrrp_instance, vrrp_sync_group and virtual_server blocks, with real
// servers and their TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK and DNS_CHECK
// checkers. Every default keepalived applies and every value a block
// inherits from its parent (delay_loop, retry, connect_timeout, ... from
// virtual_server to real_server to checker; smtp_alert from global_defs'
// smtp_alert_vrrp, smtp_alert_checker and smtp_alert) is already filled
// in, so the rest of xlb never needs keepalived's rules. [Format] writes a
// Config back as a keepalived.conf.
//
// The reading follows keepalived's parser: '#' and '!' start comments
// outside double quotes, a brace ends a line, scripts are split with
// keepalived's shell-like quoting, "include GLOB" is resolved against the
// including file's directory (with the includer/includem/includew/includeb/
// includea variants), $NAME=value definitions are substituted. The
// deprecated aliases lb_algo, lb_kind, nb_get_retry and vrrp_track_file mean
// lvs_sched, lvs_method, retry and track_file, and a vrrp_instance's
// lvs_sync_daemon_interface is global_defs' lvs_sync_daemon on that
// instance (with sync id 0, as keepalived runs it).
//
// Problems come in two kinds, both naming file:line and the offending word:
//
//   - errors ([ErrorList] of [ParseError]): what keepalived cannot run either
//     (an unbalanced brace, an instance with no virtual_router_id, an
//     include loop) and what xlb cannot read without changing which
//     services exist. Parse returns no Config then.
//   - warnings ([Config].Warnings): what keepalived logs and carries on
//     from, done the same way, each saying what is done (Warning.Then):
//     unknown keywords (ignored, with the closest known one), values it
//     rejects (the line ignored) or corrects (read as it reads them:
//     state EQUAL as BACKUP, hysteresis >= quorum, a missing protocol taken
//     as UDP, ...), deprecated aliases; and, marked Warning.Unlike,
//     keywords keepalived acts on that xlb does not implement (listed,
//     never silently dropped). [Options].Strict makes every warning an
//     error (xlb check/run --strict).
//
// virtual_server_group blocks and "virtual_server group NAME" or "fwmark N"
// are read into [VirtualServer.Services]: the IPVS services keepalived would
// make, ranges expanded.
//
// The package does no I/O beyond reading the configuration files, and keeps
// no state between calls.
package config
