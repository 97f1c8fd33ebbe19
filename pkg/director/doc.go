// Package director joins keepalived.conf (pkg/config), the health checks
// (pkg/health) and the data plane (the pkg/dataplane interface): it decides
// which reals, with which weights, each virtual service has at any moment,
// the way keepalived's checker process drives IPVS, and applies that to the
// data plane as a diff. It validates a configuration against the data
// plane's Caps (Validate, with file:line), answers xlbadm (ipvsadm's
// commands and tables, Ipvsadm) and keeps IPVS's rate estimator for
// --rate. It knows nothing of VRRP or any other VIP owner: it is told which
// VIPs are on standby (SetStandby) and passes that to the data plane.
//
// A real is in its service while all its checkers are up; when down it is
// removed, or kept with weight 0 under inhibit_on_failure. When the sum of
// the live reals' weights falls below quorum - hysteresis, the live reals
// are taken out and the sorry_server put in, until the sum is back at
// quorum + hysteresis. notify_up/notify_down and quorum_up/quorum_down run
// on the transitions, and, given CheckAlerts, the smtp_alert mails of
// keepalived's checker process go out: the checkers' changes, the quorum's,
// and the real servers a reload takes out while up.
package director
