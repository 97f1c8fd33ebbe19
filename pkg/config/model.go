package config

import (
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// Config is a keepalived.conf as xlb reads it, with keepalived's defaults
// and inheritance already applied: every field holds the value the daemon
// should use, so nothing downstream needs to know keepalived's rules.
type Config struct {
	Global         GlobalDefs
	Scripts        []VRRPScript // vrrp_script blocks, in file order
	TrackFiles     []TrackFile  // track_file / vrrp_track_file blocks, in file order
	Instances      []VRRPInstance
	SyncGroups     []SyncGroup
	VirtualServers []VirtualServer
	// Warnings are the problems keepalived would log and carry on from,
	// in the order found (line-level ones first). Callers should show them
	// to the operator.
	Warnings []Warning
}

// Script returns the vrrp_script called name, or nil.
func (c *Config) Script(name string) *VRRPScript {
	for i := range c.Scripts {
		if c.Scripts[i].Name == name {
			return &c.Scripts[i]
		}
	}
	return nil
}

// TrackFile returns the track_file called name, or nil.
func (c *Config) TrackFile(name string) *TrackFile {
	return findTrackFile(c.TrackFiles, name)
}

// Instance returns the vrrp_instance called name, or nil.
func (c *Config) Instance(name string) *VRRPInstance {
	for i := range c.Instances {
		if c.Instances[i].Name == name {
			return &c.Instances[i]
		}
	}
	return nil
}

// GlobalDefs is the global_defs block.
type GlobalDefs struct {
	RouterID              string
	NotificationEmail     []string
	NotificationEmailFrom string
	SMTPServer            string // address or host name; "" if not set
	SMTPPort              uint16 // 25 unless given
	SMTPConnectTimeout    time.Duration
	// SMTPHeloName is smtp_helo_name: "" says the host name, keepalived's
	// default.
	SMTPHeloName string
	// SMTPAlert, SMTPAlertVRRP and SMTPAlertChecker are the global
	// smtp_alert, smtp_alert_vrrp and smtp_alert_checker, nil when not
	// set: the defaults of the blocks' own smtp_alert, already applied
	// to each block's SMTPAlert.
	SMTPAlert, SMTPAlertVRRP, SMTPAlertChecker *bool
	// NoEmailFaults is no_email_faults: no mail when a vrrp_instance or
	// vrrp_sync_group enters FAULT.
	NoEmailFaults bool
	// NoCheckerEmails is no_checker_emails: a checker's mail only when
	// its change changes its real server's state.
	NoCheckerEmails bool

	VRRPVersion          int           // default version for instances: 2 unless set
	VRRPGarpMasterDelay  time.Duration // default garp_master_delay: 5s
	VRRPGarpMasterRepeat int           // default garp_master_repeat: 5
	// Defaults of garp_master_refresh (0: off) and
	// garp_master_refresh_repeat (1).
	VRRPGarpMasterRefresh       time.Duration
	VRRPGarpMasterRefreshRepeat int
	VRRPStrict                  bool
	// CheckViaVIP is xlb's check_via_vip in global_defs: every virtual
	// server's default (VirtualServer.CheckViaVIP).
	CheckViaVIP          bool
	VRRPCheckUnicastSrc  bool       // vrrp_check_unicast_src: the instances' default
	VRRPSkipCheckAdvAddr bool       // vrrp_skip_check_adv_addr: the instances' default
	VRRPMcastGroup4      netip.Addr // 224.0.0.18 unless set
	VRRPMcastGroup6      netip.Addr // ff02::12 unless set

	EnableScriptSecurity bool
	ScriptUser           string // "" means keepalived's default (keepalived_script, else root)
	ScriptGroup          string

	LVSTimeouts LVSTimeouts
	// LVSSyncDaemon is global_defs lvs_sync_daemon (or a vrrp_instance's
	// deprecated lvs_sync_daemon_interface): IPVS's connection-sync
	// daemons. nil when there is none, or when keepalived would run none
	// (its instance is not a vrrp_instance).
	LVSSyncDaemon *LVSSyncDaemon
	Pos           Pos // of the first global_defs block; zero if there is none
}

// LVSSyncDaemon is what keepalived 2.2.7 runs IPVS's connection-sync
// daemons with (ipvsadm --start-daemon): the master daemon multicasts the
// director's connections, the backup daemon receives them.
//
// Without an Instance both daemons run all the time (keepalived's checker
// process starts them). With one, they follow that vrrp_instance: the
// master daemon runs while it is MASTER, the backup daemon otherwise
// (keepalived's vrrp process switches them on its transitions).
//
// The zero values of MaxLen, Port, TTL and Group leave the kernel's
// defaults, as keepalived does: the message size from the interface's MTU
// (1500 - 28 for the master), port 8848, TTL 1, group 224.0.0.81 (the
// kernel has no IPv6 default: IPv6 only with an IPv6 Group).
type LVSSyncDaemon struct {
	// Interface is the interface the daemons send and receive on (at
	// most 15 bytes with lvs_sync_daemon). Whether it exists is not
	// checked here: keepalived does not either, and the kernel refuses
	// to start a daemon on an interface it does not have.
	Interface string
	// Instance is the vrrp_instance the daemons follow ("inst NAME", or
	// NAME right after the interface; lvs_sync_daemon_interface's own
	// instance); "" for none. It names an instance of Config.Instances.
	Instance string
	// SyncID is the sync id (0..255) in the daemons' messages: a backup
	// daemon drops messages of another id. It is the one given (id N, or
	// the deprecated SYNC_ID after the instance name) when SyncIDSet;
	// otherwise Instance's virtual_router_id, or 0 without an Instance.
	// lvs_sync_daemon_interface gives 0 (keepalived does not take its
	// instance's VRID then), which counts as set.
	SyncID    uint8
	SyncIDSet bool
	MaxLen    uint16     // maxlen: 1..65507; 0 for the kernel's default
	Port      uint16     // port: 1..65535; 0 for the kernel's 8848
	TTL       uint8      // ttl: 1..255; 0 for the kernel's 1
	Group     netip.Addr // group: a multicast address; invalid for the kernel's 224.0.0.81
	Pos       Pos        // of the lvs_sync_daemon (or lvs_sync_daemon_interface) line
}

// LVSTimeouts are the IPVS connection timeouts (ipvsadm --set). Zero means
// "leave the kernel's value", as with keepalived.
type LVSTimeouts struct {
	TCP    time.Duration
	TCPFin time.Duration
	UDP    time.Duration
}

// Script is a command keepalived would run: notify scripts, vrrp_script,
// misc_path, quorum_up/down. Args is the argument vector, split the way
// keepalived splits it (shell-like quoting, no shell). User and Group are ""
// when the script runs as the global script_user.
type Script struct {
	Args  []string
	User  string
	Group string
	// Exec is the file that runs, Args[0] resolved (PATH, symlinks) when
	// the configuration was loaded and its security checked
	// (scripts.Secure); empty: Args[0].
	Exec string
}

// VRRPScript is a vrrp_script block.
type VRRPScript struct {
	Name     string
	Script   Script
	Interval time.Duration // 1s unless set
	Timeout  time.Duration // the interval unless set
	Weight   int           // -253..253, 0 unless set
	Reverse  bool
	Rise     int // 1 unless set
	Fall     int // 1 unless set
	InitFail bool
	Pos      Pos
}

// TrackFile is a track_file block (vrrp_track_file is keepalived's
// deprecated synonym): a file holding a number, which the director reads
// whenever it changes and applies to the instances and sync groups that
// track it, each with its own weight (see TrackFileRef):
//
//   - weight 0: a non-zero value is a failure (FAULT) and zero is OK; with
//     Reverse the other way round.
//   - otherwise value*weight is added to the priority (subtracted with
//     Reverse); a result below -253 means FAULT.
type TrackFile struct {
	Name string
	Path string
	// Weight is the default for the entries that track the file: 1 unless
	// set. keepalived 2.2.7 takes -254..254 here, though its manual says
	// -2147483647..2147483647.
	Weight  int
	Reverse bool
	// InitFile is init_file: at startup, write InitValue (-254..254, 0
	// unless given) to Path if there is no file there, or, with Overwrite,
	// over whatever is there (not on a reload).
	InitFile  bool
	InitValue int64
	Overwrite bool
	Pos       Pos
}

// State is the initial VRRP state an instance wants.
type State int

const (
	StateBackup State = iota + 1
	StateMaster
)

func (s State) String() string {
	switch s {
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	}
	return "invalid"
}

// AuthType is VRRPv2 authentication (RFC 2338; removed by RFC 3768).
type AuthType int

const (
	AuthNone AuthType = iota
	AuthPass          // simple password
	AuthAH            // IPsec AH
)

func (a AuthType) String() string {
	switch a {
	case AuthNone:
		return "none"
	case AuthPass:
		return "PASS"
	case AuthAH:
		return "AH"
	}
	return "invalid"
}

// VRRPInstance is a vrrp_instance block: one virtual router.
type VRRPInstance struct {
	Name            string
	State           State // derived from the priority when not set
	Interface       string
	VirtualRouterID uint8 // 1..255, required
	// Priority is 1..255. Without a priority keyword, state MASTER gives 255
	// (address owner) and otherwise 100.
	Priority uint8
	// AdvertInterval is 1s unless set, rounded as keepalived rounds it:
	// to whole seconds for version 2, to 10ms for version 3.
	AdvertInterval time.Duration
	Version        int // 2 or 3: global vrrp_version unless set; 3 for IPv6
	Strict         bool
	AuthType       AuthType // AuthNone for version 3
	AuthPass       string   // at most 8 characters

	VirtualIPs         []VirtualIP
	ExcludedVirtualIPs []VirtualIP // virtual_ipaddress_excluded: not advertised
	TrackScripts       []TrackScript
	TrackInterfaces    []TrackInterface
	TrackFiles         []TrackFileRef

	Nopreempt    bool
	PreemptDelay time.Duration // 0..1000s

	UnicastSrcIP netip.Addr // also set by mcast_src_ip
	UnicastPeers []UnicastPeer
	// CheckUnicastSrc is check_unicast_src (or the global
	// vrrp_check_unicast_src): adverts from a source that is not a
	// unicast_peer, or with a TTL outside the peer's min_ttl..max_ttl, are
	// dropped. Unicast instances only.
	CheckUnicastSrc bool
	// SkipCheckAdvAddr is skip_check_adv_addr (or the global
	// vrrp_skip_check_adv_addr): adverts from the current master are not
	// checked for the instance's addresses.
	SkipCheckAdvAddr bool

	NotifyMaster *Script
	NotifyBackup *Script
	NotifyFault  *Script
	NotifyStop   *Script
	Notify       *Script // gets INSTANCE, name, state and priority appended
	// SMTPAlert is smtp_alert: mail its MASTER, BACKUP, FAULT and STOP
	// transitions. Unless set, the global smtp_alert_vrrp, else the global
	// smtp_alert, else off.
	SMTPAlert bool

	GarpMasterDelay  time.Duration // from vrrp_garp_master_delay unless set
	GarpMasterRepeat int           // from vrrp_garp_master_repeat unless set
	// GarpMasterRefresh (0: off) and GarpMasterRefreshRepeat: a MASTER
	// sends GarpMasterRefreshRepeat gratuitous ARPs / NAs this often.
	GarpMasterRefresh       time.Duration
	GarpMasterRefreshRepeat int

	UseVMAC       bool
	VMACInterface string // "" for keepalived's default name (vrrp.VRID)

	Pos Pos
}

// IsIPv6 reports whether the instance is an IPv6 one (its VIPs are IPv6).
func (v *VRRPInstance) IsIPv6() bool {
	return len(v.VirtualIPs) > 0 && v.VirtualIPs[0].Prefix.Addr().Is6()
}

// VirtualIP is one virtual_ipaddress line.
type VirtualIP struct {
	Prefix netip.Prefix // a /32 or /128 when no length was given
	Dev    string       // "" for the instance's interface
	Label  string
}

// TrackScript is a track_script entry with its weight resolved: the
// entry's weight if given, else the vrrp_script's.
type TrackScript struct {
	Name    string
	Weight  int
	Reverse bool
}

// TrackInterface is a track_interface entry.
type TrackInterface struct {
	Name    string
	Weight  int
	Reverse bool
}

// TrackFileRef is a track_file entry of a vrrp_instance or vrrp_sync_group,
// naming a TrackFile (see there for what Weight and Reverse do). Weight
// (-254..254) is the entry's if given, else the TrackFile's; Reverse
// likewise, separately. An instance whose priority must not move (a member
// of a sync group without sync_group_tracking_weight, or the address owner)
// has only entries of Weight 0: as keepalived does, a weight of 1 (the
// default) is set to 0 and an entry with any other weight is dropped.
// Reverse is kept: at weight 0 it says which values are failures.
type TrackFileRef struct {
	Name    string
	Weight  int
	Reverse bool
}

// UnicastPeer is a unicast_peer entry. A received advert's TTL must be in
// [MinTTL, MaxTTL]; the defaults 0 and 255 accept any.
type UnicastPeer struct {
	Addr   netip.Addr
	MinTTL int
	MaxTTL int
}

// SyncGroup is a vrrp_sync_group block: instances that change state
// together.
type SyncGroup struct {
	Name            string
	Instances       []string // names of existing vrrp_instances
	TrackScripts    []TrackScript
	TrackInterfaces []TrackInterface
	TrackFiles      []TrackFileRef
	NotifyMaster    *Script
	NotifyBackup    *Script
	NotifyFault     *Script
	NotifyStop      *Script
	Notify          *Script
	// TrackingWeight is sync_group_tracking_weight: keep the tracking
	// weights of member instances instead of zeroing them.
	TrackingWeight bool
	// SMTPAlert is smtp_alert: mail the group's transitions. Unless set,
	// the global smtp_alert_vrrp, else the global smtp_alert, else off.
	SMTPAlert bool
	Pos       Pos
}

// VirtualServer is a virtual_server block: one IPVS service, or, for a
// virtual_server_group or a fwmark, the IPVS services it stands for
// (Services), all with the same reals, checkers and settings.
type VirtualServer struct {
	// Addr and Port name a virtual server by address. For a group they are
	// its first address entry's (its address family), for a fwmark the
	// unspecified address of its family and 0.
	Addr     netip.Addr
	Port     uint16 // 0 (all ports) only for a persistent service
	Protocol lvs.Protocol
	// Group is NAME of "virtual_server group NAME"; FWMark is N of
	// "virtual_server fwmark N". Both empty for a virtual server by address.
	Group  string
	FWMark uint32
	// Entries are the services a group stands for, in the group's order,
	// ranges expanded (nil otherwise: see Services).
	Entries []ServiceEntry
	// Scheduler is an IPVS scheduler name (pkg/sched's registry); wlc unless set.
	Scheduler  string
	SchedFlags lvs.SvcFlags // ops, and the scheduler flags (sh-port, ...)
	Forward    lvs.Forward  // the default for its real servers; NAT unless set
	Tunnel     lvs.Tunnel   // with TUN: the default tunnel of its real servers
	// Sloppy is xlb's sloppy_tcp (sloppy_sctp) keyword: IPVS's sysctl of
	// that name for this service alone (dataplane.Service.Sloppy).
	Sloppy bool
	// CheckViaVIP is xlb's check_via_vip keyword (global_defs' unless
	// set): the reals' checkers reach them through the VIP, as clients
	// do (dataplane.CheckRouter), so a DR real that lost the VIP on lo,
	// or a TUN real its tunnel, fails its checks.
	CheckViaVIP bool
	// LocalAddrGroup is laddr_group_name (keepalived-DPVS's): the
	// local_address_group whose addresses, LocalAddrs, its FULLNAT
	// (lb_kind FNAT) reals see their clients' connections come from.
	LocalAddrGroup string
	LocalAddrs     []netip.Addr
	// TOA is xlb's toa keyword: the FULLNAT reals' handshake ACKs carry
	// the client's address in TCP option 254 (dataplane.Service.TOA).
	TOA bool

	// PersistenceTimeout is 0 for a service without persistence. A
	// persistence_timeout without a value, or a persistence_granularity
	// alone, gives keepalived's 360s.
	PersistenceTimeout time.Duration
	// PersistenceGranularity is the client netmask of persistence
	// templates: 255.255.255.255 (IPv4) or 128 (IPv6) unless set.
	PersistenceGranularity lvs.Netmask

	DelayLoop        time.Duration // 60s unless set; the default for checkers
	Quorum           uint32        // 1 unless set
	Hysteresis       uint32        // 0 unless set; always < Quorum
	Alpha            bool
	Omega            bool
	QuorumUp         *Script
	QuorumDown       *Script
	InhibitOnFailure bool
	SorryServer      *SorryServer
	// SMTPAlert is smtp_alert: mail when the quorum is gained or lost.
	// Unless set, the global smtp_alert_checker, else the global
	// smtp_alert, else off.
	SMTPAlert bool
	Reals     []RealServer
	Pos       Pos
}

// ServiceEntry is one IPVS service a virtual server stands for: by
// address and port, or by firewall mark (Addr then unspecified, of the
// family Family: 4 or 6; 0 in a group's "fwmark N" without a family).
type ServiceEntry struct {
	Addr   netip.Addr
	Port   uint16
	FWMark uint32
	Family int
}

// Services are the IPVS services vs stands for: its group's entries, its
// fwmark, or its address and port.
func (vs *VirtualServer) Services() []ServiceEntry {
	switch {
	case vs.Group != "":
		return vs.Entries
	case vs.FWMark != 0:
		return []ServiceEntry{{Addr: vs.Addr, FWMark: vs.FWMark, Family: familyOf(vs.Addr)}}
	}
	return []ServiceEntry{{Addr: vs.Addr, Port: vs.Port}}
}

// Name is how messages name vs: "10.0.0.1 80", "group NAME", "fwmark N".
func (vs *VirtualServer) Name() string {
	switch {
	case vs.Group != "":
		return "group " + vs.Group
	case vs.FWMark != 0:
		return "fwmark " + strconv.FormatUint(uint64(vs.FWMark), 10)
	}
	return vs.Addr.String() + " " + strconv.Itoa(int(vs.Port))
}

// word is how messages quote vs: its address, or "group NAME", "fwmark N".
func (vs *VirtualServer) word() string {
	if vs.Group == "" && vs.FWMark == 0 {
		return vs.Addr.String()
	}
	return vs.Name()
}

func familyOf(a netip.Addr) int {
	if a.Is6() {
		return 6
	}
	return 4
}

// SorryServer is the server IPVS gets instead of the real servers while the
// quorum is lost.
type SorryServer struct {
	Addr             netip.Addr
	Port             uint16
	Forward          lvs.Forward
	Tunnel           lvs.Tunnel // with TUN
	InhibitOnFailure bool
}

// RealServer is a real_server block.
type RealServer struct {
	Addr             netip.Addr
	Port             uint16      // the virtual server's port unless set (always, unless NAT)
	Weight           int         // 0..2147483647; the virtual server's weight (1) unless set
	Forward          lvs.Forward // the virtual server's method unless set
	Tunnel           lvs.Tunnel  // with TUN: the virtual server's tunnel unless set
	InhibitOnFailure bool        // set weight 0 instead of removing the server when down
	Alpha            bool        // start as down until the checkers pass
	UThreshold       uint32      // 0: no upper connection threshold
	LThreshold       uint32
	NotifyUp         *Script
	NotifyDown       *Script
	// SMTPAlert is smtp_alert: mail when one of its checkers goes up or
	// down, and when a reload removes it while up. Unless set, the global
	// smtp_alert_checker, else the global smtp_alert, else on (keepalived's
	// one default that is on).
	SMTPAlert bool
	// Checkers must all pass for the server to be up. None means always up.
	Checkers []Checker
	Pos      Pos
}

// CheckerKind is the type of a health checker block.
type CheckerKind int

const (
	TCPCheck CheckerKind = iota + 1
	HTTPGet
	SSLGet
	MiscCheck
	DNSCheck
	SMTPCheck
	UDPCheck
	PingCheck
	FileCheck
)

func (k CheckerKind) String() string {
	switch k {
	case TCPCheck:
		return "TCP_CHECK"
	case HTTPGet:
		return "HTTP_GET"
	case SSLGet:
		return "SSL_GET"
	case MiscCheck:
		return "MISC_CHECK"
	case DNSCheck:
		return "DNS_CHECK"
	case SMTPCheck:
		return "SMTP_CHECK"
	case UDPCheck:
		return "UDP_CHECK"
	case PingCheck:
		return "PING_CHECK"
	case FileCheck:
		return "FILE_CHECK"
	}
	return "invalid"
}

// Checker is a health checker block. The timing fields hold the values
// inherited from the real and virtual server where the checker sets none,
// and keepalived's per-kind defaults otherwise:
//
//	             retry  delay_before_retry  connect_timeout  delay_loop
//	TCP_CHECK    1      1s                  5s               60s
//	HTTP_GET     1      3s                  5s               60s
//	SSL_GET      1      3s                  5s               60s
//	MISC_CHECK   0      1s                  -                60s
//	DNS_CHECK    3      delay_loop          5s               60s
//	SMTP_CHECK   1      1s                  5s               60s
//	UDP_CHECK    1      1s                  5s               60s
//	PING_CHECK   1      1s                  5s               60s
//	FILE_CHECK   0      -                   -                -
//
// FILE_CHECK has none of them: keepalived acts on its file as soon as it
// changes (its DelayLoop is the real's, and only bounds how long a change
// inotify missed goes unseen).
type Checker struct {
	Kind CheckerKind

	// Connection options (not MISC_CHECK, FILE_CHECK). ConnectIP and
	// ConnectPort are the real server's unless set. PING_CHECK uses only
	// ConnectIP.
	ConnectIP   netip.Addr
	ConnectPort uint16
	BindTo      netip.Addr // zero: let the kernel choose
	BindPort    uint16
	BindIf      string

	ConnectTimeout   time.Duration
	Retry            int
	DelayBeforeRetry time.Duration
	DelayLoop        time.Duration
	Warmup           time.Duration // random initial delay up to this; delay_loop unless set
	Alpha            bool

	// HTTP_GET and SSL_GET.
	URLs         []URL
	HTTPProtocol string // "1.0" (default), "1.0C" or "1.1"
	FastRecovery bool
	EnableSNI    bool

	// MISC_CHECK.
	Misc        *Script
	MiscTimeout time.Duration // the virtual server's delay_loop unless set
	MiscDynamic bool          // exit code 2..255 sets the weight to code-2

	// DNS_CHECK.
	DNSType string // A, NS, CNAME, SOA (default), MX, TXT or AAAA
	DNSName string // "." unless set

	// SMTP_CHECK. Its block and each of its host blocks are a Checker
	// each (Pos the host's), as keepalived makes each a checker of its
	// own: all must pass.
	HeloName string // "smtpchecker.keepalived.org" (keepalived's) unless set

	// UDP_CHECK.
	Payload      []byte // payload; nil sends keepalived's default
	RequireReply bool
	// ReplyData is require_reply's pattern (nil: any reply passes) and
	// ReplyMask, per byte of it, the bits written as x that are not
	// compared (nil: none).
	ReplyData      []byte
	ReplyMask      []byte
	MinReplyLength int // 0 unless set
	MaxReplyLength int // 255 unless set

	// FILE_CHECK: the track_file it reads (Path its file) and the weight
	// the value is multiplied by, the track_file's unless set. Weight 0:
	// a non-zero value takes the real down (zero, with Reverse).
	// Otherwise value*weight (negated with Reverse) is added to the
	// real's weight, and takes it down only at or below -2147483648.
	TrackFile     string
	TrackFilePath string
	FileWeight    int // -2147483647..2147483647
	FileReverse   bool

	Pos Pos
}

// URL is a url block of HTTP_GET or SSL_GET. A check passes when the status
// is in one of StatusCodes and, if Digest is set, the body's MD5 matches,
// and, if Regex is set, the body matches it (or not, with NoMatch).
type URL struct {
	Path        string
	Digest      string        // 32 lower-case hex digits, or ""
	StatusCodes []StatusRange // 200-299 unless set
	Virtualhost string        // Host header; from the checker, real or virtual server unless set
	Regex       *URLRegex     // nil without a regex
}

// URLRegex is a url's regex and the settings that go with it.
type URLRegex struct {
	// Pattern is the regex as keepalived hands it to PCRE2: the line
	// re-read with its quotes and backslash escapes decoded ("\\d" in the
	// file is \d here; "\d" is d).
	Pattern string
	// Options are the regex_options keepalived knows, in the order given,
	// without repeats.
	Options []string
	// RE2 is what xlb matches: Pattern in Go's regexp syntax with Options
	// applied (caseless as (?i), PCRE's $ as \n?\z unless
	// dollar_endonly, ...). A pattern or option RE2 cannot express is an
	// error at its line.
	RE2       string
	NoMatch   bool  // regex_no_match
	MinOffset int64 // regex_min_offset: a match starts at or after this byte of the body
	MaxOffset int64 // regex_max_offset: ... and at or before this one; -1 if not set
	// FirstLine is regex_options firstline: a match starts on the body's
	// first line (from MinOffset).
	FirstLine bool
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct {
	Min, Max int
}

// WithoutPos returns a copy of xs with where each block was written
// cleared (pos gives a block's position), so that comparing two
// configurations ignores blocks that merely moved in the file.
func WithoutPos[T any](xs []T, pos func(*T) *Pos) []T {
	out := slices.Clone(xs)
	for i := range out {
		*pos(&out[i]) = Pos{}
	}
	return out
}
