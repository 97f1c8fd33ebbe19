package ipvsadm

import (
	"net/netip"
	"strings"

	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// Kind is an ipvsadm command.
type Kind int

// Commands, in ipvsadm's order.
const (
	CmdAddService    Kind = iota + 1 // -A
	CmdEditService                   // -E
	CmdDeleteService                 // -D
	CmdClear                         // -C
	CmdList                          // -L, -l (and no arguments at all)
	CmdAddServer                     // -a
	CmdDeleteServer                  // -d
	CmdEditServer                    // -e
	CmdSetTimeout                    // --set
	CmdStartDaemon                   // --start-daemon
	CmdStopDaemon                    // --stop-daemon
	CmdRestore                       // -R
	CmdSave                          // -S
	CmdZero                          // -Z
	CmdHelp                          // -h
	CmdVersion                       // -v
	// DPVS's ipvsadm's, for FULLNAT's local addresses (xlbadm only).
	CmdAddLaddr // -P, --add-laddr
	CmdDelLaddr // -Q, --del-laddr
	CmdGetLaddr // -G, --get-laddr
	numKinds
)

// cmdNames are ipvsadm's names for commands in its messages.
var cmdNames = [...]string{"", "add-service", "edit-service", "delete-service",
	"flush", "list", "add-server", "delete-server", "edit-server", "set",
	"start-daemon", "stop-daemon", "restore", "save", "zero", "help", "version",
	"add-laddr", "del-laddr", "get-laddr"}

func (k Kind) String() string {
	if k > 0 && int(k) < len(cmdNames) {
		return cmdNames[k]
	}
	return "none"
}

// Defaults ipvsadm applies.
const (
	DefaultScheduler = "wlc"
	// DefaultPersistentTimeout is what -p without a value gives. ipvsadm's
	// man page says 300; the 1.31 binary sends IPVS_SVC_PERSISTENT_TIMEOUT,
	// which is 6*60.
	DefaultPersistentTimeout = 360
	DefaultWeight            = 1
	maxTimeout               = 86400 * 31
	schedNameMax             = 15 // IP_VS_SCHEDNAME_MAXLEN - 1
	peNameMax                = 16
	ifNameMax                = 15
	int32Max                 = 1<<31 - 1
)

// ListOptions are the output options of -L and -S.
type ListOptions struct {
	Numeric        bool // -n
	Connection     bool // -c
	Timeout        bool // --timeout
	Daemon         bool // --daemon
	Stats          bool // --stats
	Rate           bool // --rate
	Thresholds     bool // --thresholds
	PersistentConn bool // --persistent-conn
	NoSort         bool // --nosort
	Exact          bool // --exact
	TunInfo        bool // --tun-info

	// Names, if set, turns addresses and ports into names where -n is not
	// given, as ipvsadm does with the resolver and /etc/services. Without
	// it the output is numeric either way.
	Names Resolver
}

// Resolver gives the names ipvsadm prints without -n. A lookup that finds
// nothing returns ok false, and the number is printed.
type Resolver interface {
	HostName(a netip.Addr) (name string, ok bool)
	PortName(port uint16, p lvs.Protocol) (name string, ok bool)
}

// Daemon holds the --start-daemon and --stop-daemon settings.
type Daemon struct {
	Backup     bool   // backup rather than master
	McastIfn   string // default eth0 for --start-daemon
	SyncID     uint8
	SyncMaxlen uint16
	McastGroup netip.Addr
	McastPort  uint16
	McastTTL   uint8
}

// Command is one parsed ipvsadm command line.
type Command struct {
	Kind Kind
	// Service is the virtual service the command names. For -A and -E it
	// carries every setting, defaults filled in (an -E replaces them all,
	// as in ipvsadm); for -D, -a, -e, -d, -Z and -L only its identity
	// (Protocol, Addr, Port, FWMark) matters.
	Service Service
	// HasService is set when a service was given; -L and -Z may omit it.
	HasService bool
	// Dest is the real server of -a, -e and -d, defaults filled in (an -e
	// replaces every setting, as in ipvsadm).
	Dest     Dest
	Timeouts Timeouts // --set; 0 leaves a timeout unchanged
	List     ListOptions
	Daemon   Daemon
	// Laddr is the local address of --add-laddr and --del-laddr (-z).
	Laddr netip.Addr
}

// Parser parses ipvsadm command lines. Its zero value accepts numeric
// addresses and ports only: where ipvsadm would ask the resolver or
// /etc/services, a name is refused with ipvsadm's message for a bad
// address. Set the lookups to accept names.
type Parser struct {
	LookupHost func(name string) (netip.Addr, bool)                     // IPv4 only, as gethostbyname
	LookupPort func(name string, p lvs.Protocol) (port uint16, ok bool) // getservbyname
}

// Parse parses an ipvsadm command line (without the program name) with the
// zero [Parser].
func Parse(args []string) (Command, error) { return Parser{}.Parse(args) }

// option columns of ipvsadm's commands_v_options table.
const (
	optNumeric = iota
	optConnection
	optService
	optScheduler
	optPersistent
	optNetmask
	optServer
	optForward
	optWeight
	optUThreshold
	optLThreshold
	optMcast
	optTimeout
	optDaemon
	optStats
	optRate
	optThresholds
	optPersistentConn
	optNoSort
	optSyncID
	optExact
	optOnePacket
	optPE
	optSchedFlags
	optMcastGroup
	optMcastPort
	optMcastTTL
	optSyncMaxlen
	optTunInfo
	optTunType
	optTunPort
	optTunNoCsum
	optTunCsum
	optTunRemCsum
	optLaddr
	numOpts
)

var optNames = [numOpts]string{"numeric", "connection", "service-address",
	"scheduler", "persistent", "netmask", "real-server", "forwarding-method",
	"weight", "u-threshold", "l-threshold", "mcast-interface", "timeout",
	"daemon", "stats", "rate", "thresholds", "persistent-conn", "nosort",
	"syncid", "exact", "ops", "pe", "sched-flags", "mcast-group",
	"mcast-port", "mcast-ttl", "sync-maxlen", "tun-info", "tun-type",
	"tun-port", "tun-nocsum", "tun-csum", "tun-remcsum", "laddr"}

// cmdOpts is commands_v_options: for each command, each option is
// compulsory '+', illegal 'x', optional ' ', or one of a mutually exclusive
// set '1'. Options not listed are illegal.
var cmdOpts = func() [numKinds][numOpts]byte {
	var t [numKinds][numOpts]byte
	set := func(k Kind, m map[int]byte) {
		for j := range t[k] {
			t[k][j] = 'x'
		}
		for j, c := range m {
			t[k][j] = c
		}
	}
	svcOpts := map[int]byte{optService: '+', optScheduler: ' ', optPersistent: ' ',
		optNetmask: ' ', optOnePacket: ' ', optPE: ' ', optSchedFlags: ' '}
	set(CmdAddService, svcOpts)
	set(CmdEditService, svcOpts)
	set(CmdDeleteService, map[int]byte{optService: '+'})
	set(CmdClear, nil)
	set(CmdList, map[int]byte{optNumeric: ' ', optConnection: '1', optService: '1',
		optTimeout: '1', optDaemon: '1', optStats: ' ', optRate: ' ',
		optThresholds: ' ', optPersistentConn: ' ', optNoSort: ' ', optSyncID: ' ',
		optExact: ' ', optTunInfo: ' '})
	destOpts := map[int]byte{optService: '+', optServer: '+', optForward: ' ',
		optWeight: ' ', optUThreshold: ' ', optLThreshold: ' ', optTunType: ' ',
		optTunPort: ' ', optTunNoCsum: ' ', optTunCsum: ' ', optTunRemCsum: ' '}
	set(CmdAddServer, destOpts)
	set(CmdEditServer, destOpts)
	set(CmdDeleteServer, map[int]byte{optService: '+', optServer: '+'})
	set(CmdSetTimeout, nil)
	set(CmdStartDaemon, map[int]byte{optMcast: ' ', optSyncID: ' ', optMcastGroup: ' ',
		optMcastPort: ' ', optMcastTTL: ' ', optSyncMaxlen: ' '})
	set(CmdStopDaemon, map[int]byte{optSyncID: ' '})
	set(CmdRestore, nil)
	set(CmdSave, map[int]byte{optNumeric: ' '})
	set(CmdZero, map[int]byte{optService: ' '})
	set(CmdAddLaddr, map[int]byte{optService: '+', optLaddr: '+'})
	set(CmdDelLaddr, map[int]byte{optService: '+', optLaddr: '+'})
	set(CmdGetLaddr, map[int]byte{optService: ' ', optNumeric: ' '})
	return t
}()

// tunOpts is tunnel_types_v_options, over the columns tun-port,
// tun-nocsum, tun-csum, tun-remcsum.
var (
	tunOptCols = [4]int{optTunPort, optTunNoCsum, optTunCsum, optTunRemCsum}
	tunOpts    = [3][4]byte{
		TunnelIPIP: {'x', 'x', 'x', 'x'},
		TunnelGUE:  {'+', '1', '1', '1'},
		TunnelGRE:  {'x', '1', '1', 'x'},
	}
)

// Address families as ipvsadm's svc.af holds them; 0 until an address is
// parsed.
const (
	afNone  = 0
	afInet  = 2
	afInet6 = 10
)

// parseState is ipvsadm's struct ipvs_command_entry plus its option mask.
type parseState struct {
	p       Parser
	cmd     Kind
	opts    uint64
	svcAF   int
	svc     Service
	netmask uint32 // as ipvsadm holds it: the v4 mask, or the v6 prefix
	dest    Dest
	destAF  int
	timeout Timeouts
	list    ListOptions
	daemon  Daemon
	flagArg string
	hasFlag bool
	laddr   netip.Addr
}

func (ps *parseState) setOption(col int) error {
	bit := uint64(1) << col
	if ps.opts&bit != 0 {
		return usageErr("multiple '" + optNames[col] + "' options specified")
	}
	ps.opts |= bit
	return nil
}

func (ps *parseState) has(col int) bool { return ps.opts&(1<<col) != 0 }

// Parse parses one command line the way ipvsadm 1.31 does: its checks in
// its order, so that a line with several faults gets ipvsadm's message for
// the first. An empty line is ipvsadm without arguments: list the table
// with names.
func (p Parser) Parse(args []string) (Command, error) {
	if len(args) == 0 {
		return Command{Kind: CmdList}, nil
	}
	ps := &parseState{
		p:       p,
		netmask: 0xffffffff,
		dest:    Dest{Weight: DefaultWeight, Forward: lvs.DR},
	}
	pp := &poptState{argv: args}

	// The first option must be the command.
	r, done, perr := pp.nextOpt()
	if done || perr != "" {
		return Command{}, tryHelpErr()
	}
	switch r.opt.tag {
	case 'A':
		ps.cmd = CmdAddService
	case 'E':
		ps.cmd = CmdEditService
	case 'D':
		ps.cmd = CmdDeleteService
	case 'a':
		ps.cmd = CmdAddServer
	case 'e':
		ps.cmd = CmdEditServer
	case 'd':
		ps.cmd = CmdDeleteServer
	case 'C':
		ps.cmd = CmdClear
	case 'L', 'l':
		ps.cmd = CmdList
	case 'Z':
		ps.cmd = CmdZero
	case tagSet:
		ps.cmd = CmdSetTimeout
	case 'R':
		ps.cmd = CmdRestore
	case 'S':
		ps.cmd = CmdSave
	case tagStartDaemon, tagStopDaemon:
		ps.cmd = CmdStartDaemon
		if r.opt.tag == tagStopDaemon {
			ps.cmd = CmdStopDaemon
		}
		switch r.arg {
		case "master":
		case "backup":
			ps.daemon.Backup = true
		default:
			if ps.cmd == CmdStartDaemon {
				return Command{}, usageErr("illegal start-daemon parameter specified")
			}
			return Command{}, usageErr("illegal start_daemon specified")
		}
	case 'h':
		return Command{Kind: CmdHelp}, nil
	case 'v':
		return Command{Kind: CmdVersion}, nil
	case 'P':
		ps.cmd = CmdAddLaddr
	case 'Q':
		ps.cmd = CmdDelLaddr
	case 'G':
		ps.cmd = CmdGetLaddr
	default:
		return Command{}, tryHelpErr()
	}

	for {
		r, done, perr := pp.nextOpt()
		if done {
			break
		}
		if perr != "" {
			return Command{}, optionErr(pp.badOption(), perr)
		}
		if err := ps.option(r, pp); err != nil {
			return Command{}, err
		}
	}

	if ps.cmd == CmdSetTimeout {
		a, ok1 := pp.leftover()
		b, ok2 := pp.leftover()
		c, ok3 := pp.leftover()
		if !ok1 || !ok2 || !ok3 {
			return Command{}, usageErr("--set option requires 3 timeout values")
		}
		dst := []*int{&ps.timeout.TCP, &ps.timeout.TCPFin, &ps.timeout.UDP}
		for i, s := range []string{a, b, c} {
			v, err := parseTimeout(s, 0, maxTimeout)
			if err != nil {
				return Command{}, err
			}
			*dst[i] = int(v)
		}
	}
	if w, ok := pp.leftover(); ok {
		return Command{}, usageErr("unexpected argument " + w)
	}
	if ps.hasFlag && ps.flagArg != "" {
		f, err := parseSchedFlags(ps.svc.Scheduler, ps.flagArg)
		if err != nil {
			return Command{}, err
		}
		ps.svc.Flags = ps.svc.Flags&^lvs.SchedFlags | f
	}
	return ps.finish()
}

func parseTimeout(s string, min, max int64) (uint32, error) {
	v := stringToNumber(s, min, max)
	if v < 0 {
		return 0, usageErr("invalid timeout value `" + s + "' specified")
	}
	return uint32(v), nil
}

func (ps *parseState) option(r poptResult, pp *poptState) error {
	arg := r.arg
	switch r.opt.tag {
	case 't', 'u', tagSCTPService:
		if err := ps.setOption(optService); err != nil {
			return err
		}
		switch r.opt.tag {
		case 't':
			ps.svc.Protocol = lvs.TCP
		case 'u':
			ps.svc.Protocol = lvs.UDP
		default:
			ps.svc.Protocol = lvs.SCTP
		}
		sa, ok := ps.p.parseService(arg, ps.svc.Protocol)
		if !ok {
			return usageErr("illegal virtual server address[:port] specified")
		}
		ps.svc.Addr, ps.svcAF = sa.addr, sa.af
		if sa.af == afInet6 {
			ps.netmask = 128
		}
		if sa.hasPort {
			ps.svc.Port = sa.port
		}
	case 'f':
		if err := ps.setOption(optService); err != nil {
			return err
		}
		ps.svcAF = afInet
		ps.svc.Protocol = lvs.TCP
		n, end, overflow := strtol10(arg)
		if end == 0 || end != len(arg) || overflow || n <= 0 || n > 0xffffffff {
			return usageErr("invalid fwmark value `" + arg + "' specified")
		}
		ps.svc.FWMark = uint32(n)
	case 's':
		if err := ps.setOption(optScheduler); err != nil {
			return err
		}
		ps.svc.Scheduler = truncate(arg, schedNameMax)
	case 'p':
		if err := ps.setOption(optPersistent); err != nil {
			return err
		}
		ps.svc.Persistent = true
		ps.svc.Timeout = DefaultPersistentTimeout
		if r.hasArg {
			v, err := parseTimeout(arg, 1, maxTimeout)
			if err != nil {
				return err
			}
			ps.svc.Timeout = v
		}
	case 'M':
		if err := ps.setOption(optNetmask); err != nil {
			return err
		}
		if ps.svcAF != afInet6 {
			m, ok := inetAton(arg)
			if !ok {
				if a, found := ps.p.lookupHost(arg); found {
					m, ok = a, true
				}
			}
			if !ok {
				return usageErr("illegal virtual server persistent mask specified")
			}
			ps.netmask = m
		} else {
			m := uint32(atoi(arg))
			if m < 1 || m > 128 {
				return usageErr("illegal ipv6 netmask specified")
			}
			ps.netmask = m
		}
	case 'r':
		if err := ps.setOption(optServer); err != nil {
			return err
		}
		sa, ok := ps.p.parseService(arg, ps.svc.Protocol)
		if !ok {
			return usageErr("illegal real server address[:port] specified")
		}
		ps.dest.Addr, ps.destAF = sa.addr, sa.af
		// Without a port the real takes the service's, as far as it is
		// known at this point of the line.
		ps.dest.Port = ps.svc.Port
		if sa.hasPort {
			ps.dest.Port = sa.port
		}
	case 'i', 'g', 'm', tagFullNAT:
		if err := ps.setOption(optForward); err != nil {
			return err
		}
		switch r.opt.tag {
		case 'i':
			ps.dest.Forward = lvs.TUN
		case 'g':
			ps.dest.Forward = lvs.DR
		case tagFullNAT:
			ps.dest.Forward = lvs.FNAT
		default:
			ps.dest.Forward = lvs.NAT
		}
	case 'z':
		if err := ps.setOption(optLaddr); err != nil {
			return err
		}
		a, err := netip.ParseAddr(arg)
		if err != nil || a.Zone() != "" {
			return usageErr("illegal local address specified")
		}
		ps.laddr = a
	case 'w':
		if err := ps.setOption(optWeight); err != nil {
			return err
		}
		v := stringToNumber(arg, 0, int32Max)
		if v < 0 {
			return usageErr("illegal weight specified")
		}
		ps.dest.Weight = int32(v)
	case 'x':
		if err := ps.setOption(optUThreshold); err != nil {
			return err
		}
		v := stringToNumber(arg, 0, int32Max)
		if v < 0 {
			return usageErr("illegal u_threshold specified")
		}
		ps.dest.UThreshold = uint32(v)
	case 'y':
		if err := ps.setOption(optLThreshold); err != nil {
			return err
		}
		v := stringToNumber(arg, 0, int32Max)
		if v < 0 {
			return usageErr("illegal l_threshold specified")
		}
		ps.dest.LThreshold = uint32(v)
	case 'c':
		ps.list.Connection = true
		return ps.setOption(optConnection)
	case 'n':
		ps.list.Numeric = true
		return ps.setOption(optNumeric)
	case tagMcastInterface:
		if err := ps.setOption(optMcast); err != nil {
			return err
		}
		ps.daemon.McastIfn = truncate(arg, ifNameMax)
	case tagSyncID:
		if err := ps.setOption(optSyncID); err != nil {
			return err
		}
		v := stringToNumber(arg, 0, 255)
		if v < 0 {
			return usageErr("illegal syncid specified")
		}
		ps.daemon.SyncID = uint8(v)
	case tagTimeout:
		ps.list.Timeout = true
		return ps.setOption(optTimeout)
	case tagDaemon:
		ps.list.Daemon = true
		return ps.setOption(optDaemon)
	case tagStats:
		ps.list.Stats = true
		return ps.setOption(optStats)
	case tagRate:
		ps.list.Rate = true
		return ps.setOption(optRate)
	case tagThresholds:
		ps.list.Thresholds = true
		return ps.setOption(optThresholds)
	case tagPersistentConn:
		ps.list.PersistentConn = true
		return ps.setOption(optPersistentConn)
	case tagNoSort:
		ps.list.NoSort = true
		return ps.setOption(optNoSort)
	case tagSort:
		// Sorting is the default; --sort is kept for old scripts.
	case 'X':
		ps.list.Exact = true
		return ps.setOption(optExact)
	case '6':
		if ps.svc.FWMark == 0 {
			return usageErr("-6 used before -f\n")
		}
		ps.svcAF = afInet6
		ps.netmask = 128
	case 'o':
		if err := ps.setOption(optOnePacket); err != nil {
			return err
		}
		ps.svc.Flags |= lvs.OnePacket
	case tagPE:
		if err := ps.setOption(optPE); err != nil {
			return err
		}
		ps.svc.PE = truncate(arg, peNameMax)
	case 'b':
		if err := ps.setOption(optSchedFlags); err != nil {
			return err
		}
		ps.hasFlag, ps.flagArg = true, truncate(arg, 127)
	case tagMcastGroup:
		if err := ps.setOption(optMcastGroup); err != nil {
			return err
		}
		if strings.Contains(arg, ":") {
			a, ok := inetPton6(arg)
			if !ok || !a.IsMulticast() {
				return usageErr("invalid IPv6 mcast-group `" + arg + "'")
			}
			ps.daemon.McastGroup = a
		} else {
			a, ok := inetPton4(arg)
			if !ok || !a.IsMulticast() {
				return usageErr("invalid IPv4 mcast-group `" + arg + "'")
			}
			ps.daemon.McastGroup = a
		}
	case tagMcastPort:
		if err := ps.setOption(optMcastPort); err != nil {
			return err
		}
		v := stringToNumber(arg, 1, 65535)
		if v < 0 {
			return usageErr("illegal mcast-port specified")
		}
		ps.daemon.McastPort = uint16(v)
	case tagMcastTTL:
		if err := ps.setOption(optMcastTTL); err != nil {
			return err
		}
		v := stringToNumber(arg, 1, 255)
		if v < 0 {
			return usageErr("illegal mcast-ttl specified")
		}
		ps.daemon.McastTTL = uint8(v)
	case tagSyncMaxlen:
		if err := ps.setOption(optSyncMaxlen); err != nil {
			return err
		}
		v := stringToNumber(arg, 1, 65535-20-8)
		if v < 0 {
			return usageErr("illegal sync-maxlen specified")
		}
		ps.daemon.SyncMaxlen = uint16(v)
	case tagTunInfo:
		ps.list.TunInfo = true
		return ps.setOption(optTunInfo)
	case tagTunType:
		if err := ps.setOption(optTunType); err != nil {
			return err
		}
		t, ok := lvs.ParseTunnelType(arg)
		if !ok {
			return usageErr("illegal tunnel type specified")
		}
		ps.dest.Tunnel = t
	case tagTunPort:
		if err := ps.setOption(optTunPort); err != nil {
			return err
		}
		v := stringToNumber(arg, 1, 65535)
		if v < 0 {
			return usageErr("illegal tunnel port specified")
		}
		ps.dest.TunPort = uint16(v)
	case tagTunNoCsum:
		return ps.setOption(optTunNoCsum)
	case tagTunCsum:
		ps.dest.TunFlags |= TunnelCsum
		return ps.setOption(optTunCsum)
	case tagTunRemCsum:
		ps.dest.TunFlags |= TunnelRemCsum
		return ps.setOption(optTunRemCsum)
	default:
		// A second command, -h or -v after the command.
		return usageErr("invalid option `" + pp.badOption() + "'")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// parseSchedFlags is ipvsadm's parse_sched_flags: a comma list checked
// against the scheduler, which defaults to wlc.
func parseSchedFlags(scheduler, arg string) (lvs.SvcFlags, error) {
	if scheduler == "" {
		scheduler = DefaultScheduler
	}
	var flags lvs.SvcFlags
	n := 0
	for _, f := range strings.Split(arg, ",") {
		if f == "" {
			continue // strtok skips empty fields
		}
		n++
		bit, owner, ok := sched.FlagByName(f)
		if !ok {
			return 0, usageErr("invalid scheduler flag `" + f + "'")
		}
		if owner != "" && scheduler != owner {
			return 0, usageErr("incompatible scheduler flag `" + f + "'")
		}
		flags |= bit
	}
	if n == 0 {
		// ipvsadm 1.31 dereferences a null token here and dies with SIGSEGV.
		return 0, usageErr("invalid scheduler flag `" + arg + "'")
	}
	return flags, nil
}

// finish is the rest of ipvsadm's process_options: the option table check,
// then the per-command checks and defaults.
func (ps *parseState) finish() (Command, error) {
	if err := checkTable(ps.cmd, ps.opts); err != nil {
		return Command{}, err
	}
	svc := &ps.svc
	switch ps.cmd {
	case CmdAddService, CmdEditService:
		if svc.FWMark == 0 && svc.Port == 0 && !svc.Persistent {
			return Command{}, usageErr("Zero port specified for non-persistent service")
		}
		if svc.Flags&lvs.OnePacket != 0 && svc.FWMark == 0 && svc.Protocol != lvs.UDP {
			return Command{}, usageErr("One-Packet Scheduling is only for UDP virtual services")
		}
		if svc.Scheduler == "" {
			svc.Scheduler = DefaultScheduler
		}
	case CmdStartDaemon:
		if ps.daemon.McastIfn == "" {
			ps.daemon.McastIfn = "eth0"
		}
	case CmdAddServer, CmdEditServer:
		fwd := ps.dest.Forward
		if svc.FWMark == 0 && (fwd == lvs.TUN || fwd == lvs.DR) {
			ps.dest.Port = svc.Port
		}
		// FULLNAT crosses families too (DPVS's ipvsadm takes an IPv6
		// service's IPv4 reals: NAT64; xlb the reverse, NAT46).
		if ps.destAF != ps.svcAF && fwd != lvs.TUN && fwd != lvs.FNAT {
			return Command{}, usageErr("Different address family is allowed only for tunneling servers")
		}
		tunAny := ps.has(optTunType) || ps.has(optTunPort) || ps.has(optTunNoCsum) ||
			ps.has(optTunCsum) || ps.has(optTunRemCsum)
		if tunAny && fwd != lvs.TUN {
			return Command{}, usageErr("Tunnel options conflict with forward method")
		}
		if err := checkTunnel(ps.dest.Tunnel, ps.opts); err != nil {
			return Command{}, err
		}
	case CmdList:
		l := &ps.list
		if ((l.Connection || l.Timeout || l.Daemon) && (l.Stats || l.Rate || l.Thresholds)) ||
			((l.Timeout || l.Daemon) && l.PersistentConn) {
			return Command{}, usageErr("options conflicts in the list command")
		}
	}

	// Turn ipvsadm's family and mask into the model's.
	if svc.FWMark != 0 {
		svc.Addr = netip.IPv4Unspecified()
		if ps.svcAF == afInet6 {
			svc.Addr = netip.IPv6Unspecified()
		}
	}
	svc.Netmask = ps.netmask
	if !svc.Persistent {
		svc.Timeout = 0
	}
	return Command{
		Kind:       ps.cmd,
		Service:    *svc,
		HasService: ps.has(optService),
		Dest:       ps.dest,
		Timeouts:   ps.timeout,
		List:       ps.list,
		Daemon:     ps.daemon,
		Laddr:      ps.laddr,
	}, nil
}

// checkTable is generic_opt_check.
func checkTable(cmd Kind, opts uint64) error {
	row := &cmdOpts[cmd]
	last, count := 0, 0
	for j := 0; j < numOpts; j++ {
		given := opts&(1<<j) != 0
		switch {
		case !given && row[j] == '+':
			return usageErr("You need to supply the '" + optNames[j] + "' option for the '" + cmdNames[cmd] + "' command")
		case given && row[j] == 'x':
			return usageErr("Illegal '" + optNames[j] + "' option with the '" + cmdNames[cmd] + "' command")
		case given && row[j] == '1':
			count++
			if count == 1 {
				last = j
				continue
			}
			return usageErr("The option '" + optNames[j] + "' conflicts with the '" + optNames[last] + "' option in the '" + cmdNames[cmd] + "' command")
		}
	}
	return nil
}

// checkTunnel is tunnel_opt_check.
func checkTunnel(t TunnelType, opts uint64) error {
	if int(t) >= len(tunOpts) {
		return nil
	}
	row := &tunOpts[t]
	last, count := 0, 0
	for j, col := range tunOptCols {
		given := opts&(1<<col) != 0
		switch {
		case !given && row[j] == '+':
			return usageErr("You need to supply the '" + optNames[col] + "' option for the '" + t.String() + "' tunnel type")
		case given && row[j] == 'x':
			return usageErr("Illegal '" + optNames[col] + "' option with the '" + t.String() + "' tunnel type")
		case given && row[j] == '1':
			count++
			if count == 1 {
				last = col
				continue
			}
			return usageErr("The option '" + optNames[col] + "' conflicts with the '" + optNames[last] + "' option in the '" + t.String() + "' tunnel type")
		}
	}
	return nil
}

type svcAddr struct {
	af      int
	addr    netip.Addr
	port    uint16
	hasPort bool
}

// parseService is ipvsadm's parse_service: "host[:port]", "[v6]:port" or a
// bare IPv6 address. The quirks are ipvsadm's: an all-digit string is not
// an address; "[1.2.3.4]:80" is 1.2.3.4 without a port; IPv4 goes through
// inet_aton, so "10.1" is 10.0.0.1.
func (p Parser) parseService(buf string, proto lvs.Protocol) (svcAddr, bool) {
	var r svcAddr
	if isAllDigits(buf) {
		return r, false
	}
	portStr, hasPort := "", false
	if buf[0] == '[' {
		i := strings.IndexByte(buf, ']')
		if i < 0 || i+1 >= len(buf) || buf[i+1] != ':' {
			return r, false
		}
		portStr, hasPort = buf[i+2:], true
		buf = buf[1:i]
	}
	if a, ok := inetPton6(buf); ok {
		r.af, r.addr = afInet6, a
	} else {
		// The colon search runs on what is left after the brackets, so a
		// bracketed IPv4 address loses its port.
		hasPort = false
		if i := strings.LastIndexByte(buf, ':'); i >= 0 {
			portStr, hasPort = buf[i+1:], true
			buf = buf[:i]
		}
		if v, ok := inetAton(buf); ok {
			r.addr = inetNtoaAddr(v)
		} else if v, found := p.lookupHost(buf); found {
			r.addr = inetNtoaAddr(v)
		} else {
			return r, false
		}
		r.af = afInet
	}
	if hasPort {
		r.hasPort = true
		if n := stringToNumber(portStr, 0, 65535); n >= 0 {
			r.port = uint16(n)
		} else if n, ok := p.lookupPort(portStr, proto); ok {
			r.port = n
		} else {
			return r, false
		}
	}
	return r, true
}

// isAllDigits is str_is_digit, which holds for "" too.
func isAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func inetNtoaAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (p Parser) lookupHost(name string) (uint32, bool) {
	if p.LookupHost == nil {
		return 0, false
	}
	a, ok := p.LookupHost(name)
	if !ok || !a.Is4() {
		return 0, false
	}
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), true
}

func (p Parser) lookupPort(name string, proto lvs.Protocol) (uint16, bool) {
	if p.LookupPort == nil || (proto != lvs.TCP && proto != lvs.UDP && proto != lvs.SCTP) {
		return 0, false
	}
	return p.LookupPort(name, proto)
}
