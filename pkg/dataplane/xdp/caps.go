package xdp

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// Caps is what the XDP data plane forwards, with its built-in sizes: the
// schedulers the program computes (pkg/sched's registry entries with an
// XDP table, each with a picker in bpf/sched.h), DR, NAT and TUN (IPIP,
// GUE and GRE without their optional checksums; IPv4 in IPv4 and IPv6 in
// IPv6) and FULLNAT (within a family); TCP and UDP. An opened data
// plane's Caps have the sizes it was loaded with.
var Caps = capsWith(builtin.lim)

func capsWith(lim limits) dataplane.Caps {
	return dataplane.Caps{
		Name:       "the XDP data plane",
		Schedulers: sched.Names(sched.InXDP),
		Forwards:   []lvs.Forward{lvs.DR, lvs.NAT, lvs.TUN, lvs.FNAT},
		Tunnels:    []lvs.TunnelType{lvs.TunIPIP, lvs.TunGUE, lvs.TunGRE},
		// IPv4 in IPv6 and IPv6 in IPv4, as IPVS wraps them.
		TunnelCrossFamily: true,
		Protocols:         []lvs.Protocol{lvs.TCP, lvs.UDP},
		IPv6:              true,
		// IPv6: DR, NAT66, TUN (IPv6 in IPv6) and FULLNAT, to IPv6
		// reals or, NAT64, to IPv4 ones; and NAT46, FULLNAT from an
		// IPv4 service to IPv6 reals.
		IPv6Forwards:  []lvs.Forward{lvs.DR, lvs.NAT, lvs.TUN, lvs.FNAT},
		Flags:         lvs.SchedFlags,
		AllPorts:      true,
		CheckViaVIP:   true,
		FWMarkWhy:     "the mark is set by netfilter, after XDP has seen the packet (--dataplane auto runs such a file on IPVS)",
		MaxLocalAddrs: fnatLaddrs,
		NAT64:         true,
		NAT46:         true,
		TOA:           true,
		MaxServices:   lim.services,
		MaxReals:      lim.reals,
	}
}

// Caps implements dataplane.Dataplane.
func (x *Dataplane) Caps() dataplane.Caps { return capsWith(x.lim) }

// Flags of the BPF maps' entries, from the enums bpf2go generated.
const (
	realAvailable = uint32(xlbXlbRealFlagsXLB_REAL_F_AVAILABLE)
	realPresent   = uint32(xlbXlbRealFlagsXLB_REAL_F_PRESENT)
	realNAT       = uint32(xlbXlbRealFlagsXLB_REAL_F_NAT)
	realStandby   = uint32(xlbXlbRealFlagsXLB_REAL_F_STANDBY)
	realTUN       = uint32(xlbXlbRealFlagsXLB_REAL_F_TUN)
	realFNAT      = uint32(xlbXlbRealFlagsXLB_REAL_F_FNAT)
	realTOA       = uint32(xlbXlbRealFlagsXLB_REAL_F_TOA)
	connNAT       = uint8(xlbXlbConnFlagsXLB_CONN_F_NAT)
	connFNAT      = uint8(xlbXlbConnFlagsXLB_CONN_F_FNAT)
	svcStandby    = uint16(xlbXlbSvcFlagsXLB_SVC_F_STANDBY)
	svcSloppy     = uint16(xlbXlbSvcFlagsXLB_SVC_F_SLOPPY)
)

// Sizes compiled into the program (bpf/xlb_consts.h) that no map's size
// says; a test checks them against the object.
const (
	// schedSlots is the longest scheduler table (a wrr sequence).
	schedSlots = 4096
	maxScan    = 256
	noReal     = 0xffffffff
	// fnatLaddrs: a service's local addresses (struct laddr_set).
	fnatLaddrs = len(xlbLaddrSet{}.Slot)
)

// builtin is what the embedded BPF object says: each scheduler's value in
// the program's enum xlb_sched by name (XLB_SCHED_RR is "rr"), read from
// its BTF, and the map sizes it was built with.
var builtin = func() struct {
	schedID map[string]uint8
	lim     limits
} {
	spec, err := loadXlb()
	if err != nil {
		panic(fmt.Sprintf("xdp: the embedded BPF object: %v", err))
	}
	ids, err := enumNames(spec, "xlb_sched", "XLB_SCHED_")
	if err != nil {
		panic(fmt.Sprintf("xdp: %v", err))
	}
	delete(ids, "none")
	return struct {
		schedID map[string]uint8
		lim     limits
	}{ids, limitsOf(spec)}
}()

// schedID is each scheduler's value in the program's enum xlb_sched.
var schedID = builtin.schedID

func enumNames(spec *ebpf.CollectionSpec, name, prefix string) (map[string]uint8, error) {
	var e *btf.Enum
	if err := spec.Types.TypeByName(name, &e); err != nil {
		return nil, fmt.Errorf("enum %s in the BPF object: %w", name, err)
	}
	out := map[string]uint8{}
	for _, v := range e.Values {
		out[strings.ToLower(strings.TrimPrefix(v.Name, prefix))] = uint8(v.Value)
	}
	return out, nil
}

// limits are the map sizes the data plane was loaded with.
type limits struct {
	services, reals, ifaces int
	tabEntries              uint32 // the scheduler-table pool
	conns, halfOpen         int    // the flow table and the half-open one
	filter                  int    // slots of the address filters
	filterBits              uint   // log2(filter)
	laddrs                  int    // FULLNAT's local addresses, all services'
	// bpfLoop: the kernel has bpf_loop (Linux 5.17), which mh-fallback's
	// search runs in; the program is told so at load.
	bpfLoop bool
}

func limitsOf(spec *ebpf.CollectionSpec) limits {
	f := int(spec.Maps[xlbMapVipFilter].MaxEntries)
	return limits{
		services:   int(spec.Maps[xlbMapSvcRetired].MaxEntries),
		reals:      int(spec.Maps[xlbMapReals].MaxEntries),
		ifaces:     int(spec.Maps[xlbMapTxPorts].MaxEntries),
		tabEntries: spec.Maps[xlbMapSchedTab].MaxEntries,
		conns:      int(spec.Maps[xlbMapConns].MaxEntries),
		halfOpen:   int(spec.Maps[xlbMapHalfOpen].MaxEntries),
		filter:     f,
		filterBits: uint(bits.TrailingZeros(uint(f))),
		laddrs:     int(spec.Maps[xlbMapLaddrs].MaxEntries),
	}
}

// sizeServices makes room for n services: two slots each in the service
// slot and cursor maps, a VIP each.
func sizeServices(spec *ebpf.CollectionSpec, n uint32) {
	spec.Maps[xlbMapSvcMap].MaxEntries = n
	spec.Maps[xlbMapSvcRetired].MaxEntries = n
	spec.Maps[xlbMapVips].MaxEntries = n
	spec.Maps[xlbMapSvcs].MaxEntries = 2 * n
	spec.Maps[xlbMapSchedCursor].MaxEntries = 2 * n
	spec.Maps[xlbMapSvcLaddrs].MaxEntries = n
}

// sizeReals makes room for n reals in every map kept per real.
func sizeReals(spec *ebpf.CollectionSpec, n uint32) {
	for _, m := range []string{xlbMapReals, xlbMapTunnels, xlbMapRealStats, xlbMapRealConns, xlbMapSweepCounts, xlbMapConnAdjust} {
		spec.Maps[m].MaxEntries = n
	}
}
