package control

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
}

// Service is one virtual service.
type Service struct {
	Protocol  string `json:"protocol"`
	Addr      string `json:"addr"`
	Port      uint16 `json:"port"`
	Scheduler string `json:"scheduler"`
	Flags     string `json:"flags,omitempty"`
	Quorum    uint32 `json:"quorum"`
	QuorumUp  bool   `json:"quorum_up"`
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
}
