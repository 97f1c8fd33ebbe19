package xdp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/probe"
	"github.com/xlbproject/xlb/pkg/sched"
	"github.com/xlbproject/xlb/pkg/syncd"
)

// DefaultPinDir is where maps and links are pinned.
const DefaultPinDir = "/sys/fs/bpf/xlb"

// Config configures the XDP data plane.
type Config struct {
	// Interfaces to attach to (where VIP traffic arrives).
	Interfaces []string
	// PinDir is a directory on bpffs; DefaultPinDir if empty.
	PinDir string
	Mode   dataplane.XDPMode
	// MaxConns sizes the connection table; 0 keeps the built-in default.
	// A restarted process must use the same size to take over the table.
	MaxConns uint32
	// MaxHalfOpen sizes the table of flows not yet proven (a SYN flood's
	// only); 0: a quarter of MaxConns (at least 1024), or the built-in
	// 65536 with the built-in MaxConns.
	MaxHalfOpen uint32
	// MaxFullNATFlows sizes the FULLNAT port tables (fnat_ports, and
	// fnat_ports6 for IPv6), which are preallocated; 0: each family's
	// flow table's size plus its half-open table's (every flow may be
	// FULLNAT).
	MaxFullNATFlows uint32
	// MaxServices sizes the service maps (two slots each); MaxReals the
	// maps kept per real; MaxTableEntries the pool of scheduler tables.
	// 0 keeps the built-in 4096, 65536 and 1M (Limits). As MaxConns, they
	// must stay the same across a takeover.
	MaxServices, MaxReals, MaxTableEntries uint32
	// Resolver finds reals' MACs; NeighResolver if nil.
	Resolver Resolver
	// ResolveInterval is how often unresolved reals are retried (1 s).
	ResolveInterval time.Duration
	// SweepInterval is how often expired flows are ended and connection
	// counts corrected (1 s).
	SweepInterval time.Duration
	// ResolveWait is how long Apply waits for a new real's ARP reply
	// before applying it as unresolved (500 ms).
	ResolveWait time.Duration
	// SloppyTCP is IPVS's sloppy_tcp for every TCP service (a service's
	// own Sloppy turns it on for that one).
	SloppyTCP bool
	// MHTabIndex is the CONFIG_IP_VS_MH_TAB_INDEX of the IPVS directors
	// mh's tables must equal (0: the kernel's default, 12: 4093 entries).
	MHTabIndex int
	Logger     *slog.Logger
	// FloodRate turns flood mode on: above this many new flows a second
	// on one CPU, the new flows of sh, dh and mh services without
	// persistence go by the scheduler's table alone, with no flow entry
	// (and their later packets with them); 0: off.
	FloodRate uint32
}

// Dataplane is the XDP implementation of dataplane.Dataplane.
//
// Two locks: applyMu serializes what changes the maps as a whole (Apply,
// the resolve loop's re-apply, the sweep, Stats' reads), and may be held
// while next hops resolve; mu guards the control plane's picture and the
// standby flags, and is held only while planning and writing. A role flip
// (SetStandby) takes mu alone, so it never waits for ARP or a sweep.
type Dataplane struct {
	cfg   Config
	log   *slog.Logger
	objs  xlbObjects
	lim   limits
	links []attached
	hops  hops

	applyMu sync.Mutex

	mu       sync.Mutex
	state    *tables
	standby  map[netip.Addr]bool // SetStandby's
	tookOver bool                // a pinned link was found
	serving  map[netip.Addr]bool // VIPs the taken-over data plane was serving
	// ports are tx_ports' slots by ifindex (what the map holds).
	ports map[int]uint16

	stop      chan struct{}
	done      chan struct{}
	swept     chan struct{}
	neighDone chan struct{}
	// routesDone: followRoutes has stopped (routes.go).
	routesDone chan struct{}
	// nextHopChanges counts next hops changed by neighbour events.
	nextHopChanges atomic.Uint64
	// clock is the programs' clock: "jiffies" (clock.go) or "coarse".
	clock string
	// ft is the IPv4 flow table's array, mapped (flowtab.go); ftAdopt:
	// it was made by this process, beside an LRU that may hold flows.
	ft      *flowTable
	ftAdopt bool
	// hintMu serialises moves of the flow cache's epoch.
	hintMu sync.Mutex
	// def is the flood defence as set and as it stands (defMu).
	defMu sync.Mutex
	def   defence

	// Connection sync (sync.go): the daemons, and the flows and
	// templates installed from a master as last written (syncMu).
	sync       *syncd.Daemons
	syncMu     sync.Mutex
	hintsStale bool // a flow was replaced: forgetFlowHints before syncMu goes
	synced     map[xlbConnKey]syncedMark
	synced6    map[xlbConnKey6]syncedMark // IPv6 flows'
	syncedTmpl map[xlbTmplKey]syncedMark
	// pendingAdjust are the count changes of installed records not yet
	// applied, by real slot, and adjustedAt when they last were (applyMu).
	pendingAdjust map[uint32]xlbConnCounts
	adjustedAt    time.Time

	// Health checks through the data path (check.go).
	checkMu sync.Mutex
	checks  checks
}

type attached struct {
	ifname  string
	ifindex int
	mode    dataplane.XDPMode // dataplane.XDPAuto when taken over from a pinned link
	link    link.Link
	tc      *tcHook // xlb_tc_neigh; nil when it could not be attached (warned)
	check   *tcHook // xlb_tc_check; nil when it could not be attached (warned)
}

var _ dataplane.Dataplane = (*Dataplane)(nil)

// Open loads the program and its maps (reusing pinned ones), attaches to
// the configured interfaces and takes over any state a previous process
// left pinned.
func Open(cfg Config) (*Dataplane, error) {
	if cfg.MHTabIndex != 0 && !sched.MHTabIndexValid(cfg.MHTabIndex) {
		return nil, fmt.Errorf("mh table index %d: a kernel's CONFIG_IP_VS_MH_TAB_INDEX is 8 to 17", cfg.MHTabIndex)
	}
	if cfg.PinDir == "" {
		cfg.PinDir = DefaultPinDir
	}
	if cfg.Resolver == nil {
		cfg.Resolver = NeighResolver{}
	}
	if cfg.ResolveInterval == 0 {
		cfg.ResolveInterval = time.Second
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Second
	}
	if cfg.ResolveWait == 0 {
		cfg.ResolveWait = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	x := &Dataplane{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), done: make(chan struct{}), swept: make(chan struct{}),
		neighDone: make(chan struct{}), routesDone: make(chan struct{}), synced: map[xlbConnKey]syncedMark{}, synced6: map[xlbConnKey6]syncedMark{}, syncedTmpl: map[xlbTmplKey]syncedMark{},
		pendingAdjust: map[uint32]xlbConnCounts{}}
	x.sync = syncd.New(x, x.log)
	if err := x.load(); err != nil {
		return nil, err
	}
	rec, err := recoverTables(&x.objs, x.lim, x.log)
	if err != nil {
		x.closeObjs()
		return nil, fmt.Errorf("take over pinned state in %s: %w", cfg.PinDir, err)
	}
	x.state, x.standby, x.ports = rec.t, rec.standby, rec.ports
	x.hops.m = map[hopKey]*hop{}
	for _, s := range rec.t.services {
		for _, r := range s.reals {
			k := hopOf(r.Real)
			x.hops.m[k] = &hop{nh: r.nh, resolved: r.resolved}
			x.hops.setGateway(k, netip.Addr{}, r.nh.Gateway)
		}
	}
	st := rec.t
	if err := x.initTimeouts(); err != nil {
		x.closeObjs()
		return nil, err
	}
	if err := x.SetDefence(dataplane.Defence{}); err != nil {
		x.closeObjs()
		return nil, err
	}
	for _, name := range cfg.Interfaces {
		if err := x.attach(name); err != nil {
			// Leave a running data plane as it was; remove what this
			// call made from nothing.
			fresh := len(st.services) == 0 && !x.tookOver
			x.closeLinks(fresh)
			if fresh {
				for _, m := range x.maps() {
					_ = m.Unpin()
				}
				_ = os.Remove(cfg.PinDir)
			}
			x.closeObjs()
			return nil, err
		}
	}
	// Flows the replaced program (one before the array) put in the LRU
	// since the load are counted at their homes too.
	if x.tookOver && x.ftAdopt {
		if err := x.adoptLRUFlows(); err != nil {
			x.log.Warn("flows the replaced program made may be taken for new ones", "error", err)
		}
	}
	if x.tookOver {
		x.serving = map[netip.Addr]bool{}
		for k := range st.services {
			if !x.standby[k.Addr] {
				x.serving[k.Addr] = true
			}
		}
	}
	go x.resolveLoop()
	go x.sweepLoop()
	x.followNeighbours()
	x.followRoutes()
	return x, nil
}

func (x *Dataplane) load() error {
	_, statErr := os.Stat(x.cfg.PinDir)
	fresh := os.IsNotExist(statErr)
	if err := ensureBPFFS(x.cfg.PinDir); err != nil {
		return err
	}
	// The verifier walks about half a million instructions: under a
	// second on a fast machine, 7-20 s on an emulated one (the test VM);
	// say how long it took.
	start := time.Now()
	err := x.loadObjects()
	if err == nil {
		x.log.Info("loaded the data plane's programs", "took", time.Since(start).Round(time.Millisecond), "clock", x.clock,
			"flow_cache", x.objs.FlowCache.MaxEntries() > 1)
	}
	if err != nil && fresh {
		// Maps are pinned before the program is verified: a load that
		// fails leaves nothing behind it made.
		_ = os.RemoveAll(x.cfg.PinDir)
	}
	return err
}

// memlock lifts RLIMIT_MEMLOCK, which BPF maps count against on kernels
// before 5.11 (later ones account to the memory cgroup instead).
var memlock = sync.OnceValue(rlimit.RemoveMemlock)

func (x *Dataplane) loadObjects() error {
	if err := memlock(); err != nil {
		x.log.Warn("cannot lift RLIMIT_MEMLOCK; maps may fail to load on kernels before 5.11", "error", err)
	}
	// The sweeper walks the flow table with bpf_for_each_map_elem (5.13);
	// say so plainly rather than with the verifier's words.
	if err := probe.XDPDataPlane(); err != nil {
		return fmt.Errorf("%w; run on IPVS (--dataplane ipvs)", err)
	}
	spec, err := loadXlb()
	if err != nil {
		return fmt.Errorf("load bpf spec: %w", err)
	}
	if x.cfg.MaxConns != 0 {
		// A flow, its NAT reverse, its persistence template.
		for _, m := range []string{xlbMapConns, xlbMapConns6, xlbMapNatReplies, xlbMapNatReplies6, xlbMapTemplates} {
			spec.Maps[m].MaxEntries = x.cfg.MaxConns
		}
	}
	if half := HalfOpenSize(x.cfg.MaxConns, x.cfg.MaxHalfOpen); half != 0 {
		for _, m := range []string{xlbMapHalfOpen, xlbMapHalfOpen6, xlbMapHalfOpenReplies, xlbMapHalfOpenReplies6} {
			spec.Maps[m].MaxEntries = half
		}
	}
	// A FULLNAT port for every flow, proven or half-open, of each
	// family, unless told otherwise.
	spec.Maps[xlbMapFnatPorts].MaxEntries = spec.Maps[xlbMapConns].MaxEntries + spec.Maps[xlbMapHalfOpen].MaxEntries
	spec.Maps[xlbMapFnatPorts6].MaxEntries = spec.Maps[xlbMapConns6].MaxEntries + spec.Maps[xlbMapHalfOpen6].MaxEntries
	if x.cfg.MaxFullNATFlows != 0 {
		spec.Maps[xlbMapFnatPorts].MaxEntries = x.cfg.MaxFullNATFlows
		spec.Maps[xlbMapFnatPorts6].MaxEntries = x.cfg.MaxFullNATFlows
	}
	// The IPv4 flows: an array of twice their slots, and an LRU behind it
	// for what overflows (flowtab.go).
	flows := spec.Maps[xlbMapConns].MaxEntries
	ftMeta, ftFresh, err := configureFlowTable(spec, x.cfg.PinDir, flows)
	if err != nil {
		return err
	}
	if x.cfg.MaxServices != 0 {
		sizeServices(spec, x.cfg.MaxServices)
	}
	if x.cfg.MaxReals != 0 {
		sizeReals(spec, x.cfg.MaxReals)
	}
	if x.cfg.MaxTableEntries != 0 {
		spec.Maps[xlbMapSchedTab].MaxEntries = x.cfg.MaxTableEntries
	}
	x.lim = limitsOf(spec)
	x.lim.conns = int(flows)
	if features.HaveProgramHelper(ebpf.XDP, asm.FnKtimeGetCoarseNs) == nil {
		if err := spec.Variables["have_coarse_clock"].Set(uint8(1)); err != nil {
			return fmt.Errorf("configure bpf clock: %w", err)
		}
	}
	x.clock = "coarse"
	if c, err := measureJiffyClock(); err != nil {
		x.log.Debug("the data plane keeps the coarse clock", "error", err)
	} else if err := setJiffyClock(spec, c); err != nil {
		return err
	} else {
		x.clock = "jiffies"
	}
	if haveBPFLoop() && !testNoBPFLoop {
		if err := spec.Variables["have_bpf_loop"].Set(uint8(1)); err != nil {
			return fmt.Errorf("configure bpf_loop: %w", err)
		}
		x.lim.bpfLoop = true
	}
	if err := sizeFlowCache(spec, x.lim.bpfLoop); err != nil {
		return err
	}
	x.replaceCounterPins(spec)
	err = spec.LoadAndAssign(&x.objs, &ebpf.CollectionOptions{
		Maps: ebpf.MapOptions{PinPath: x.cfg.PinDir},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("load xdp program: %+v", ve)
		}
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return fmt.Errorf("load maps pinned in %s: %w (they were made by a different xlb build or map size; detach first with Close, or remove the directory)", x.cfg.PinDir, err)
		}
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("load xdp program: %w (xlb needs root, or CAP_BPF and CAP_NET_ADMIN)", err)
		}
		return fmt.Errorf("load xdp program: %w", err)
	}
	if x.ft, err = openFlowTable(x.objs.Flowtab, x.objs.FlowtabMeta, ftMeta); err != nil {
		x.objs.Close()
		return err
	}
	if ftFresh {
		if err := x.adoptLRUFlows(); err != nil {
			x.closeObjs()
			return err
		}
		x.ftAdopt = true
	}
	// xlb_xdp hands IPv6 to xlb_xdp6 by a tail call, and xlb_xdp6 NAT46's
	// replies to xlb_nat46 (bpf/xdp_lb.bpf.c).
	if err := x.objs.XlbProgs.Put(uint32(progIPv6), x.objs.XlbXdp6); err != nil {
		x.closeObjs()
		return fmt.Errorf("load xdp program: the IPv6 program's slot: %w", err)
	}
	if err := x.objs.XlbProgs.Put(uint32(progNAT46), x.objs.XlbNat46); err != nil {
		x.closeObjs()
		return fmt.Errorf("load xdp program: the NAT46 program's slot: %w", err)
	}
	return nil
}

// testNoBPFLoop loads the program as on a kernel without bpf_loop: the
// scheduler's scans as bounded loops (tests of both forms).
var testNoBPFLoop bool

// haveBPFLoop says whether the kernel has bpf_loop (Linux 5.17).
func haveBPFLoop() bool {
	return features.HaveProgramHelper(ebpf.XDP, asm.FnLoop) == nil
}

// testNoFlowCache loads the data plane without its established-flow
// cache (tests compare the two).
var testNoFlowCache bool

// sizeFlowCache gives each CPU flowCacheSlots hints of each family
// and as many of IPv4 NAT replies' (128 KiB of IPv4's, 256 KiB of
// IPv6's, 256 KiB of replies'), few
// enough to stay in its caches: a hint is there for the flows that carry
// the traffic, and a packet of any other flow pays a probe that does not
// go to memory (a cache as large as the flow table added a miss, 100 ns,
// to every new flow and every packet of a million flows hit at random).
// A kernel without bpf_map_lookup_percpu_elem (before 5.19) gets no
// cache: a flow that ends could not drop the other CPUs' hints (bpfLoop:
// the programs were given bpf_loop, which drops them).
func sizeFlowCache(spec *ebpf.CollectionSpec, bpfLoop bool) error {
	if testNoFlowCache || !bpfLoop || features.HaveProgramHelper(ebpf.XDP, asm.FnMapLookupPercpuElem) != nil {
		return nil
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("count CPUs: %w", err)
	}
	spec.Maps[xlbMapFlowCache].MaxEntries = flowCacheSlots
	spec.Maps[xlbMapFlowCache6].MaxEntries = flowCacheSlots
	spec.Maps[xlbMapReplyCache].MaxEntries = flowCacheSlots
	if err := spec.Variables[xlbVarFlowCacheMask].Set(uint32(flowCacheSlots - 1)); err != nil {
		return fmt.Errorf("configure the flow cache: %w", err)
	}
	if err := spec.Variables[xlbVarFlowCacheCpus].Set(uint32(cpus)); err != nil {
		return fmt.Errorf("configure the flow cache: %w", err)
	}
	return nil
}

// flowCacheSlots is the established-flow cache's hints per CPU (a power
// of two).
const flowCacheSlots = 4096

// forgetFlowHints voids every hint of the established-flow cache: the
// control plane has written flows or timeouts the hints may have copied.
func (x *Dataplane) forgetFlowHints() error {
	x.hintMu.Lock()
	defer x.hintMu.Unlock()
	if x.objs.FlowCache.MaxEntries() <= 1 {
		return nil // no cache (sizeFlowCache), no hints
	}
	// A global of the programs' .bss, written through its memory map
	// (a kernel with the cache, 5.19, has that).
	if err := moveEpoch(x.objs.FlowEpoch); err != nil {
		return fmt.Errorf("move the flow cache's epoch: %w", err)
	}
	return nil
}

// moveEpoch moves an epoch of the programs' .bss (flow_epoch,
// route_epoch) one on, never to 0 (which route_epoch keeps for "no
// hints"). The caller holds hintMu.
func moveEpoch(v *ebpf.Variable) error {
	var e uint32
	if err := v.Get(&e); err != nil {
		return err
	}
	e++
	if e == 0 {
		e = 1
	}
	return v.Set(e)
}

// The slots of xlb_progs: xlb_xdp6's (XLB_PROG_IPV6), xlb_nat46's
// (XLB_PROG_NAT46).
const (
	progIPv6  = 0
	progNAT46 = 1
)

// ensureBPFFS makes sure dir's parent is on a mounted bpffs.
func ensureBPFFS(dir string) error {
	parent := filepath.Dir(dir)
	var st unix.Statfs_t
	if err := unix.Statfs(parent, &st); err != nil {
		return fmt.Errorf("pin directory %s: %w", parent, err)
	}
	if st.Type != unix.BPF_FS_MAGIC {
		if parent != "/sys/fs/bpf" {
			return fmt.Errorf("pin directory %s is not on bpffs", parent)
		}
		if err := unix.Mount("bpf", parent, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("mount bpffs on %s: %w", parent, err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pin directory: %w", err)
	}
	return nil
}

func (x *Dataplane) linkPin(ifname string) string {
	return filepath.Join(x.cfg.PinDir, LinkPin(ifname))
}

// Serving is the VIPs a data plane taken over from a previous xlb was
// serving (not on standby) when this one opened it; nil for a fresh one.
func (x *Dataplane) Serving() map[netip.Addr]bool { return x.serving }

// LinkPin is the name, in the pin directory, of the XDP link on ifname: a
// data plane pinned there is running on that interface.
func LinkPin(ifname string) string { return "link_" + ifname }

func (x *Dataplane) attach(name string) error {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("attach xdp %s: %w", name, err)
	}
	pin := x.linkPin(name)
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		if err := l.Update(x.objs.XlbXdp); err != nil {
			l.Close()
			return fmt.Errorf("replace program on pinned link %s: %w", pin, err)
		}
		x.tookOver = true
		mode := attachedMode(name)
		x.log.Info("took over xdp link", "interface", name, "pin", pin, "mode", mode.String())
		x.links = append(x.links, attached{ifname: name, ifindex: ifi.Index, mode: mode, link: l, tc: x.tryTC(name, ifi.Index), check: x.tryTCCheck(name, ifi.Index)})
		return x.addTxPort(ifi.Index)
	}

	try := []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric}
	switch x.cfg.Mode {
	case dataplane.XDPNative:
		try = try[:1]
	case dataplane.XDPGeneric:
		try = try[1:]
	}
	var l link.Link
	var mode dataplane.XDPMode
	for _, m := range try {
		flags := link.XDPDriverMode
		if m == dataplane.XDPGeneric {
			flags = link.XDPGenericMode
		}
		l, err = link.AttachXDP(link.XDPOptions{Program: x.objs.XlbXdp, Interface: ifi.Index, Flags: flags})
		if err == nil {
			mode = m
			break
		}
		if m == dataplane.XDPNative && len(try) > 1 {
			x.log.Warn("native xdp refused, falling back to generic mode", "interface", name, "reason", err)
		}
	}
	if err != nil {
		return fmt.Errorf("attach xdp %s: %w", name, err)
	}
	if err := l.Pin(pin); err != nil {
		l.Close()
		return fmt.Errorf("pin xdp link %s: %w", pin, err)
	}
	x.log.Info("attached xdp", "interface", name, "mode", mode.String())
	x.links = append(x.links, attached{ifname: name, ifindex: ifi.Index, mode: mode, link: l, tc: x.tryTC(name, ifi.Index), check: x.tryTCCheck(name, ifi.Index)})
	return x.addTxPort(ifi.Index)
}

// tryTC attaches xlb_tc_neigh at ingress (tc.go), or says what is lost
// without it.
func (x *Dataplane) tryTC(name string, ifindex int) *tcHook {
	return x.tryTCSide(x.objs.XlbTcNeigh, tcIngress, name, ifindex,
		"no tc ingress program: a NAT reply whose next hop has no neighbour entry yet is dropped until the kernel learns it")
}

// tryTCCheck attaches xlb_tc_check at egress (check.go), or says what is
// lost without it.
func (x *Dataplane) tryTCCheck(name string, ifindex int) *tcHook {
	return x.tryTCSide(x.objs.XlbTcCheck, tcEgress, name, ifindex,
		"no tc egress program: health checks through the data path (check_via_vip) cannot leave by this interface")
}

func (x *Dataplane) tryTCSide(prog *ebpf.Program, side tcSide, name string, ifindex int, lost string) *tcHook {
	h, err := x.attachTC(prog, side, name, ifindex)
	if err != nil {
		x.log.Warn(lost, "interface", name, "error", err)
		return nil
	}
	x.log.Debug("attached tc "+side.name, "interface", name, "how", h.how)
	return h
}

// replaceableMaps hold only counters of the program's own reasons or a
// sweep's scratch: a pinned one that another build made (a reason or a
// field added since) is replaced, its contents lost, rather than refusing
// to take over the flows, services and links beside it.
var replaceableMaps = []string{xlbMapStats, xlbMapSweepCounts}

// replaceCounterPins removes the pins of replaceable maps the spec cannot
// take over, so that the load makes them anew.
func (x *Dataplane) replaceCounterPins(spec *ebpf.CollectionSpec) {
	for _, name := range replaceableMaps {
		pin := filepath.Join(x.cfg.PinDir, name)
		m, err := ebpf.LoadPinnedMap(pin, nil)
		if err != nil {
			continue
		}
		incompatible := spec.Maps[name].Compatible(m)
		m.Close()
		if incompatible != nil {
			x.log.Warn("pinned map made by another build: replaced, its counts start again", "map", name, "reason", incompatible)
			if err := os.Remove(pin); err != nil {
				x.log.Warn("remove pinned map", "map", name, "error", err)
			}
		}
	}
}

// attachedMode asks the kernel how XDP is attached to ifname.
func attachedMode(ifname string) dataplane.XDPMode {
	l, err := netlink.LinkByName(ifname)
	if err != nil || l.Attrs().Xdp == nil {
		return dataplane.XDPAuto
	}
	switch l.Attrs().Xdp.AttachMode {
	case nl.XDP_ATTACHED_DRV:
		return dataplane.XDPNative
	case nl.XDP_ATTACHED_SKB:
		return dataplane.XDPGeneric
	}
	return dataplane.XDPAuto
}

// addTxPort gives an interface a tx_ports slot, if it has none.
func (x *Dataplane) addTxPort(ifindex int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.ports[ifindex]; ok {
		return nil
	}
	free, ok := freePort(x.ports, nil, x.lim.ifaces)
	if !ok {
		return fmt.Errorf("interface %d: no room in tx_ports (%d interfaces)", ifindex, x.lim.ifaces)
	}
	k, v := uint32(free), uint32(ifindex)
	if err := x.objs.TxPorts.Update(&k, &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("add interface %d to tx_ports: %w", ifindex, err)
	}
	x.ports[ifindex] = free
	return nil
}

// Modes reports how each interface is attached.
func (x *Dataplane) Modes() map[string]dataplane.XDPMode {
	m := make(map[string]dataplane.XDPMode, len(x.links))
	for _, a := range x.links {
		m[a.ifname] = a.mode
	}
	return m
}

// Close detaches from every interface and removes every map, pin and link
// the data plane made.
func (x *Dataplane) Close() error {
	x.shutdown()
	x.closeLinks(true)
	var errs []error
	for _, m := range x.maps() {
		if err := m.Unpin(); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, x.ft.close(), x.objs.Close())
	if err := os.Remove(x.cfg.PinDir); err != nil && !os.IsNotExist(err) {
		errs = append(errs, fmt.Errorf("remove %s: %w", x.cfg.PinDir, err))
	}
	return errors.Join(errs...)
}

// closeObjs closes the programs and maps, and unmaps the flow table.
func (x *Dataplane) closeObjs() {
	x.ft.close()
	x.objs.Close()
}

// Release lets go of the data plane and leaves it running: the links and
// maps stay pinned for the next process to take over.
func (x *Dataplane) Release() error {
	x.shutdown()
	x.closeLinks(false)
	return errors.Join(x.ft.close(), x.objs.Close())
}

func (x *Dataplane) shutdown() {
	select {
	case <-x.stop:
		return
	default:
	}
	x.sync.Close()
	close(x.stop)
	<-x.done
	<-x.swept
	<-x.neighDone
	<-x.routesDone
}

// sweepLoop expires flows and corrects connection counts.
func (x *Dataplane) sweepLoop() {
	defer close(x.swept)
	t := time.NewTicker(x.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-x.stop:
			return
		case <-t.C:
		}
		if err := x.Sweep(); err != nil {
			x.log.Warn("sweeping the connection table", "error", err)
		}
		x.forgetSynced()
	}
}

func (x *Dataplane) closeLinks(detach bool) {
	for _, a := range x.links {
		if detach {
			if err := a.link.Unpin(); err != nil {
				x.log.Warn("unpin xdp link", "interface", a.ifname, "error", err)
			}
		}
		a.link.Close()
		if a.tc != nil {
			if err := a.tc.detach(detach); err != nil {
				x.log.Warn("detach tc ingress", "interface", a.ifname, "error", err)
			}
		}
		if a.check != nil {
			if err := a.check.detach(detach); err != nil {
				x.log.Warn("detach tc egress", "interface", a.ifname, "error", err)
			}
		}
		if detach {
			x.log.Info("detached xdp", "interface", a.ifname)
		}
	}
	x.links = nil
}

// maps lists every map of the program (all are pinned).
func (x *Dataplane) maps() []*ebpf.Map {
	var out []*ebpf.Map
	v := reflect.ValueOf(x.objs.xlbMaps)
	for i := range v.NumField() {
		if m, ok := v.Field(i).Interface().(*ebpf.Map); ok && m != nil {
			out = append(out, m)
		}
	}
	return out
}

// resolveLoop retries reals whose MAC is unknown every ResolveInterval,
// and every 30 intervals all of them (a real that changed its MAC, or
// whose route went away); a change is applied at once.
func (x *Dataplane) resolveLoop() {
	defer close(x.done)
	t := time.NewTicker(x.cfg.ResolveInterval)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-x.stop:
			return
		case <-t.C:
		}
		x.resolvePass(tick%30 == 0)
	}
}

// resolvePass asks again about the reals whose next hop is unknown (all:
// every real), and applies what changed.
func (x *Dataplane) resolvePass(all bool) {
	var addrs []hopKey
	for a, h := range x.hops.snapshot() {
		if !h.resolved || all {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return
	}
	x.applyMu.Lock()
	defer x.applyMu.Unlock()
	if !x.refreshHops(addrs, true) {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.applyLocked(x.state.desired); err != nil {
		x.log.Warn("re-resolving reals", "error", err)
	}
}

// Apply implements dataplane.Dataplane. The reals' next hops are found
// first, outside the plan (a new real's ARP reply is waited for up to
// ResolveWait); then the change is planned and written.
func (x *Dataplane) Apply(services []dataplane.Service) error {
	return x.resolveThen(services, func() error { return x.applyLocked(services) })
}

// Update implements dataplane.Updater: only the services named are planned
// and written (their reals' next hops found first, as Apply does).
func (x *Dataplane) Update(set []dataplane.Service, del []dataplane.ServiceKey) error {
	return x.resolveThen(set, func() error {
		w, err := x.world(set)
		if err != nil {
			return err
		}
		p, err := planChange(x.state, set, del, false, w)
		if err != nil {
			return err
		}
		if err := x.write(x.state, p); err != nil {
			return err
		}
		x.state.change(set, del)
		return nil
	})
}

// resolveThen validates services, finds their reals' next hops with
// applyMu held, then runs write with mu held too.
func (x *Dataplane) resolveThen(services []dataplane.Service, write func() error) error {
	if err := x.Caps().Validate(services); err != nil {
		return err
	}
	x.applyMu.Lock()
	defer x.applyMu.Unlock()
	x.ensureHops(realHops(services), x.cfg.ResolveWait)
	x.mu.Lock()
	defer x.mu.Unlock()
	return write()
}

// applyLocked plans services over what the maps hold and writes the plan.
// Called with applyMu and mu held.
func (x *Dataplane) applyLocked(services []dataplane.Service) error {
	w, err := x.world(nil)
	if err != nil {
		return err
	}
	p, err := plan(x.state, services, w)
	if err != nil {
		return err
	}
	if err := x.write(x.state, p); err != nil {
		return err
	}
	x.state.setDesired(services)
	return nil
}

// world gathers what the planner is told; with only, the scheduler
// cursors of those services alone (an Update plans no other). Called with
// mu held.
func (x *Dataplane) world(only []dataplane.Service) (world, error) {
	var cursors map[uint32]uint64
	var hops map[hopKey]hop
	var err error
	if only == nil {
		cursors, err = x.cursors()
		hops = x.hops.snapshot()
	} else {
		cursors, err = x.cursorsOf(only)
		hops = x.hops.snapshotOf(realHops(only))
	}
	if err != nil {
		return world{}, err
	}
	return world{hops: hops, cursors: cursors, standby: x.standby, ports: x.ports, lim: x.lim, sloppyTCP: x.cfg.SloppyTCP,
		geometry: sched.Geometry{MHTabIndex: x.cfg.MHTabIndex}, checkedVIPs: x.checkedVIPs()}, nil
}

// cursorsOf reads the cursors of the slots that serve services now, as
// cursors does for all of them.
func (x *Dataplane) cursorsOf(services []dataplane.Service) (map[uint32]uint64, error) {
	out := make(map[uint32]uint64, len(services))
	for _, s := range services {
		st := x.state.services[s.ServiceKey]
		if st == nil {
			continue
		}
		slot := st.slot()
		var v uint64
		if err := x.objs.SchedCursor.Lookup(&slot, &v); err != nil {
			return nil, fmt.Errorf("read scheduler cursor: %w", err)
		}
		out[slot] = v
	}
	return out, nil
}

// cursors reads how many picks each service slot's sequence has given.
func (x *Dataplane) cursors() (map[uint32]uint64, error) {
	vals, err := readArray[uint64](x.objs.SchedCursor, int(x.objs.SchedCursor.MaxEntries()))
	if err != nil {
		return nil, fmt.Errorf("read scheduler cursors: %w", err)
	}
	out := make(map[uint32]uint64, len(x.state.services))
	for _, s := range x.state.services {
		out[s.slot()] = vals[s.slot()]
	}
	return out, nil
}
