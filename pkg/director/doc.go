// Package director joins keepalived.conf (pkg/config), the health checks
// (pkg/health) and the data plane (pkg/dataplane): it decides which reals,
// with which weights, each virtual service has at any moment, the way
// keepalived's checker process drives IPVS, and applies that to the data
// plane as a diff.
//
// A real is in its service while all its checkers are up; when down it is
// removed, or kept with weight 0 under inhibit_on_failure. When the sum of
// the live reals' weights falls below quorum - hysteresis, the live reals
// are taken out and the sorry_server put in, until the sum is back at
// quorum + hysteresis. notify_up/notify_down and quorum_up/quorum_down run
// on the transitions.
package director
