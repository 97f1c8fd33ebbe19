// Package election checks the VRRP elections across the directors of a pair
// or group before any of them runs: given every director's keepalived.conf
// (parsed by pkg/config), it matches their vrrp_instances into virtual
// routers and works out, for every combination of tracker failures on every
// director (and a director down entirely), who keepalived 2.2.7 would make
// MASTER. It reports, with file:line:
//
//   - a MASTER whose own tracker failed and that stays MASTER (|weight| not
//     larger than the priority gap, or a nopreempt BACKUP), with the
//     smallest weight that would move the VIP;
//   - two directors that would both claim MASTER because one drops the
//     other's adverts (VIP set, auth_type/auth_pass, advert_int of VRRPv2,
//     version, unicast/multicast, unicast_peer lists, check_unicast_src);
//   - combinations in which nobody is MASTER;
//   - equal priorities (decided by history, then by address), VRIDs that
//     collide with another virtual router on the same interface, and sync
//     groups whose members' routers elect different directors.
//
// Files:
//
//   - election.go: Director, Finding, Report and Check, and the sync group
//     check across routers.
//   - match.go: vrrp_instances of different files matched into virtual
//     routers, by virtual_router_id and family (interfaces may differ), then
//     by VIP set.
//   - track.go: what each director's instance tracks, with keepalived
//     2.2.7's sync group and address owner rules, and the (priority, FAULT)
//     outcomes its tracker states can give (vrrp.EffectivePriority).
//   - accept.go: which director's adverts another drops (vrrp_check_packet).
//   - settle.go: the election itself: from a starting MASTER (or none),
//     BACKUPs time out in order of their down timers, MASTERs step down to
//     better adverts they accept, until nothing changes.
//   - router.go: the combinations and the findings of one virtual router:
//     every combination of the directors' distinct (priority, FAULT)
//     outcomes and of directors down (up to 2^18, else those with at most
//     two directors away from healthy), each election run from every
//     history (a fresh start, and each director having been MASTER).
//
// The package is pure: it reads no file and runs nothing.
package election
