package control

import "time"

// Counters are cumulative counts from the data plane.
type Counters struct {
	Packets    uint64 `json:"packets"`
	Bytes      uint64 `json:"bytes"`
	Conns      uint64 `json:"conns"`
	OutPackets uint64 `json:"out_packets"`
	OutBytes   uint64 `json:"out_bytes"`
}

// Status is what `xlb status` shows.
type Status struct {
	// Dataplane says how traffic is forwarded: "xdp" with each
	// interface's attach mode.
	Dataplane  string            `json:"dataplane"`
	Interfaces map[string]string `json:"interfaces"`
	ConfigFile string            `json:"config_file"`
	Services   []Service         `json:"services"`
	VRRP       []VRRPInstance    `json:"vrrp"`
	// Reasons counts what the data plane did with packets to VIPs it did
	// not forward (drops and passes by reason).
	Reasons map[string]uint64 `json:"reasons,omitempty"`
	// NextHopChanges counts the reals' MACs changed at once on a
	// neighbour event.
	NextHopChanges uint64 `json:"next_hop_changes,omitempty"`
	// LastError is the last failure to apply the wanted state, if the
	// data plane still differs from it.
	LastError string `json:"last_error,omitempty"`
	// Defence is the flood defence and the flow tables' room.
	Defence *Defence `json:"defence,omitempty"`
	// BGP is the BGP speaker's sessions and announcements (--bgp-config).
	BGP *BGP `json:"bgp,omitempty"`
	// Sync is the connection-sync daemons, when any runs.
	Sync *Sync `json:"sync,omitempty"`
}

// BGP is the speaker that announces VIPs for ECMP scale-out.
type BGP struct {
	AS       uint32    `json:"as"`
	RouterID string    `json:"router_id"`
	Draining bool      `json:"draining,omitempty"`
	Peers    []BGPPeer `json:"peers"`
	VIPs     []BGPVIP  `json:"vips"`
}

// BGPPeer is one BGP session: its state (established, active, idle ...)
// since when, and why it last went down.
type BGPPeer struct {
	Addr   string    `json:"addr"`
	State  string    `json:"state"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason,omitempty"`
}

// BGPVIP is a VIP the speaker governs: announced, or why not.
type BGPVIP struct {
	VIP       string `json:"vip"`
	Announced bool   `json:"announced"`
	Reason    string `json:"reason,omitempty"`
}

// Defence is where IPVS's flood defence stands: each strategy's mode (0
// never, 1 when short of room, 2 engaged now, 3 always) and whether it is
// engaged, the threshold and what it is measured on.
type Defence struct {
	DropEntry   int  `json:"drop_entry"`
	DropPacket  int  `json:"drop_packet"`
	SecureTCP   int  `json:"secure_tcp"`
	DropEntryOn bool `json:"drop_entry_engaged"`
	// DropRate is drop_packet's 1 in N now (0: none).
	DropRate    int  `json:"drop_rate"`
	SecureTCPOn bool `json:"secure_tcp_engaged"`
	// Threshold is amemthresh: in RoomUnit.
	Threshold  int    `json:"amemthresh"`
	AmDropRate int    `json:"am_droprate"`
	Room       uint64 `json:"room"`
	RoomOf     uint64 `json:"room_of"`
	// RoomUnit is "flows" (XDP: free flow-table entries) or "pages" (IPVS:
	// free memory).
	RoomUnit string `json:"room_unit"`
	// XDP: the flow table, the half-open table, entries drop_entry ended.
	Flows       uint64 `json:"flows,omitempty"`
	MaxFlows    uint64 `json:"max_flows,omitempty"`
	HalfOpen    uint64 `json:"half_open,omitempty"`
	MaxHalfOpen uint64 `json:"max_half_open,omitempty"`
	Dropped     uint64 `json:"dropped_entries,omitempty"`
	Error       string `json:"error,omitempty"`
}

// Service is one virtual service.
type Service struct {
	Protocol string `json:"protocol"`
	Addr     string `json:"addr"`
	Port     uint16 `json:"port"`
	// FWMark names a firewall-mark service (Addr is then the unspecified
	// address of its family, Port 0).
	FWMark    uint32 `json:"fwmark,omitempty"`
	Scheduler string `json:"scheduler"`
	Flags     string `json:"flags,omitempty"`
	// Sloppy: sloppy_tcp (sloppy_sctp) is on for it.
	Sloppy   bool   `json:"sloppy,omitempty"`
	Quorum   uint32 `json:"quorum"`
	QuorumUp bool   `json:"quorum_up"`
	// SorryServer is the sorry server's address when it is in service.
	SorryServer string `json:"sorry_server,omitempty"`
	// Standby is true while the VIP's vrrp_instance is not MASTER here:
	// the service is loaded but forwards nothing.
	Standby  bool     `json:"standby,omitempty"`
	Counters Counters `json:"counters"`
	Reals    []Real   `json:"reals"`
}

// Real is one real server of a service.
type Real struct {
	Addr    string `json:"addr"`
	Port    uint16 `json:"port"`
	Forward string `json:"forward"`
	// Tunnel is a TUN real's encapsulation as ipvsadm --tun-info shows it
	// (ipip, gue:6080:nocsum, gre:nocsum); empty for the other methods.
	Tunnel string `json:"tunnel,omitempty"`
	// Weight is the configured weight; EffectiveWeight what the data plane
	// has now (a misc_dynamic result, 0 when inhibited).
	Weight          int  `json:"weight"`
	EffectiveWeight int  `json:"effective_weight"`
	Healthy         bool `json:"healthy"`
	InService       bool `json:"in_service"`
	// Reason is the last health check's explanation.
	Reason   string `json:"reason,omitempty"`
	Resolved bool   `json:"resolved"`
	// ActiveConns and InactConns are IPVS's ActiveConn and InActConn.
	ActiveConns int64    `json:"active_conns"`
	InactConns  int64    `json:"inact_conns"`
	Counters    Counters `json:"counters"`
}

// VRRPInstance is a vrrp_instance of the configuration.
type VRRPInstance struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	VRID      uint8  `json:"vrid"`
	Priority  uint8  `json:"priority"`
	State     string `json:"state"`
	// Note says why the instance is not running, when it is not.
	Note string `json:"note,omitempty"`
	// Dropped counts received adverts refused, by reason (pkg/vrrp's
	// DropReason: auth_pass, unicast_src, ttl, ...).
	Dropped map[string]uint64 `json:"dropped,omitempty"`
}

// Sync is the connection-sync daemons (lvs_sync_daemon, xlbadm
// --start-daemon) and, for xlb's own (the XDP data plane), what they did.
type Sync struct {
	// Configured: lvs_sync_daemon started them (else xlbadm did).
	Configured bool         `json:"configured"`
	Daemons    []SyncDaemon `json:"daemons"`
	Stats      *SyncStats   `json:"stats,omitempty"`
	// Gate is what the VRRP sync gate last decided.
	Gate string `json:"gate,omitempty"`
}

// SyncDaemon is one daemon as ipvsadm -L --daemon lists it.
type SyncDaemon struct {
	Role      string `json:"role"` // master or backup
	Interface string `json:"interface"`
	SyncID    uint8  `json:"syncid"`
	MaxLen    uint16 `json:"maxlen"`
	Group     string `json:"group"`
	Port      uint16 `json:"port"`
	TTL       uint8  `json:"ttl"`
}

// SyncStats count xlb's sync daemons' work since they started.
type SyncStats struct {
	SentMessages     uint64        `json:"sent_messages"`
	SentRecords      uint64        `json:"sent_records"`
	SendErrors       uint64        `json:"send_errors"`
	Unsendable       uint64        `json:"unsendable"`
	Dumps            uint64        `json:"dumps_sent"`
	LastPass         time.Duration `json:"last_pass_ns"`
	ReceivedMessages uint64        `json:"received_messages"`
	ReceivedRecords  uint64        `json:"received_records"`
	Installed        uint64        `json:"installed"`
	Stale            uint64        `json:"stale"`
	Skipped          uint64        `json:"skipped"`
	Dropped          uint64        `json:"dropped"`
	OtherSyncID      uint64        `json:"other_syncid"`
	Malformed        uint64        `json:"malformed"`
	InstallErrors    uint64        `json:"install_errors"`
	LastReceived     time.Time     `json:"last_received,omitzero"`
	DumpRequested    time.Time     `json:"dump_requested,omitzero"`
	DumpReceived     time.Time     `json:"dump_received,omitzero"`
}
