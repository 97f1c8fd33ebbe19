package dataplane

import (
	"errors"
	"fmt"
)

// Defence is IPVS's defence against floods that would fill the connection
// table: its drop_entry, drop_packet and secure_tcp strategies, with
// amemthresh and am_droprate (Documentation/networking/ipvs-sysctl.rst).
// Each strategy is a mode:
//
//	0  never
//	1  automatic: engaged when short of room (the mode then reads 2)
//	2  engaged now; back to 1 when room returns
//	3  always
//
// drop_entry ends half-open flows, and flows idle a minute that carried
// one to eight packets, in a random 1/32 of the table every second;
// drop_packet drops 1 in N new flows, N = amemthresh/(amemthresh-room)
// (am_droprate in mode 3); secure_tcp moves TCP flows by IPVS's stricter
// state table, where a NAT flow is established only once its real has
// answered.
//
// Short of room means, for IPVS, free memory below amemthresh pages; for
// the XDP data plane, free entries of its flow table below Threshold.
// (XDP keeps new flows in a half-open table of their own until they are
// proven, so a flood of first packets does not use up the flow table.)
type Defence struct {
	DropEntry, DropPacket, SecureTCP int
	// Threshold is amemthresh: IPVS, memory pages; XDP, free flow-table
	// entries. 0 leaves IPVS's as it is and gives XDP a sixteenth of its
	// table.
	Threshold int
	// AmDropRate is drop_packet's rate in mode 3 (1 in N); 0 leaves
	// IPVS's as it is and gives XDP IPVS's default, 10.
	AmDropRate int
	// Keep leaves IPVS's sysctls as the host set them: the modes are
	// not written (the XDP data plane takes them as 0, IPVS's default).
	Keep bool
}

// DefaultAmDropRate is IPVS's am_droprate.
const DefaultAmDropRate = 10

// Check refuses modes outside 0-3 and negative numbers.
func (d Defence) Check() error {
	var errs []error
	for _, m := range []struct {
		name string
		v    int
	}{{"drop_entry", d.DropEntry}, {"drop_packet", d.DropPacket}, {"secure_tcp", d.SecureTCP}} {
		if m.v < 0 || m.v > 3 {
			errs = append(errs, fmt.Errorf("%s %d: the modes are 0 (never), 1 (when short of room), 2 (engaged now) and 3 (always)", m.name, m.v))
		}
	}
	if d.Threshold < 0 {
		errs = append(errs, fmt.Errorf("amemthresh %d: must be 0 (the default) or more", d.Threshold))
	}
	if d.AmDropRate < 0 {
		errs = append(errs, fmt.Errorf("am_droprate %d: must be 0 (the default) or more", d.AmDropRate))
	}
	return errors.Join(errs...)
}

// DefenceStatus is where the defence stands.
type DefenceStatus struct {
	// Defence holds the modes as they read now (1 and 2 flip with room)
	// and the threshold and rate in force.
	Defence
	// Engaged: drop_entry sweeping, drop_packet's current 1-in-N (0:
	// none), the stricter TCP table in use.
	DropEntryOn bool
	DropRate    int
	SecureTCPOn bool
	// Room is what "short of room" is measured by (XDP: free flow-table
	// entries; IPVS: free memory pages) and its size.
	Room, RoomOf uint64
	// XDP only: live flows in the flow table and the half-open one, their
	// sizes, and the entries drop_entry has ended.
	Flows, MaxFlows, HalfOpen, MaxHalfOpen, Dropped uint64
}
