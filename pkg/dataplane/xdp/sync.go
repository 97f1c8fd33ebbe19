package xdp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/ipvssync"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/syncd"
)

// Connection sync on the XDP data plane: the flow table read as IPVS's
// master sends it, and records from a master (IPVS's or another xlb's)
// installed as IPVS's backup installs them (ip_vs_proc_conn), into the same
// maps the program reads, so that a director that becomes MASTER already
// has its peer's flows.

var _ syncd.Table = (*Dataplane)(nil)

// syncStates are the TCP states IPVS's master syncs
// (ip_vs_sync_conn_needed): never a half-open one.
var syncStates = map[uint8]bool{
	uint8(xlbXlbCtStateXLB_CT_ESTABLISHED): true,
	uint8(xlbXlbCtStateXLB_CT_FIN_WAIT):    true,
	uint8(xlbXlbCtStateXLB_CT_CLOSE):       true,
	uint8(xlbXlbCtStateXLB_CT_CLOSE_WAIT):  true,
	uint8(xlbXlbCtStateXLB_CT_TIME_WAIT):   true,
}

// syncedMark is what this process last wrote of a flow or template it
// installed from a master: while the entry still has it, no packet has
// touched it here and the master must not send it back.
type syncedMark struct {
	lastSeen uint64
	state    uint8
}

// SyncRecords implements syncd.Table: every proven flow in a state IPVS
// syncs, and every persistence template, with the time of its last
// packet. Flows this director installed from its master and has not
// forwarded since are left out: they are the master's to send.
func (x *Dataplane) SyncRecords(each func(syncd.Record)) error {
	reals := make([]xlbReal, x.lim.reals)
	if err := readBatches(x.objs.Reals, make([]uint32, x.lim.reals), reals, func(int) {}); err != nil {
		return fmt.Errorf("read reals: %w", err)
	}
	laddrs, err := readArray[xlbLaddr](x.objs.Laddrs, int(x.objs.Laddrs.MaxEntries()))
	if err != nil {
		return fmt.Errorf("read local addresses: %w", err)
	}
	now := monotonicNow()
	x.syncMu.Lock()
	defer x.syncMu.Unlock()
	fwd := func(r *xlbReal) uint32 {
		switch {
		case r.Flags&realNAT != 0:
			return ipvssync.Masq
		case r.Flags&realTUN != 0:
			return ipvssync.Tunnel
		}
		return ipvssync.DRoute
	}
	// record sends the flow from client to virtual, unless this director
	// installed it from its master and has not forwarded it since
	// (mine is false).
	record := func(proto uint8, client, virtual netip.AddrPort, v *xlbConn, mine bool) {
		r := liveReal(reals, v.Real, v.Gen)
		if r == nil || v.Retired != 0 || expired(now, v.LastSeen, v.TimeoutS) || !mine {
			return
		}
		c := ipvssync.Conn{
			Protocol: proto,
			Client:   client,
			Virtual:  virtual,
			Dest:     netip.AddrPortFrom(r.Addr.addr(r.Family), destPort(r, virtual.Port())),
			Flags:    fwd(r),
			Timeout:  time.Duration(v.TimeoutS) * time.Second,
		}
		if v.Flags&connFNAT != 0 {
			// IPVS's record has no room for a FULLNAT flow's local
			// address and port: they go in xlb's option (a kernel
			// backup skips it).
			if int(v.Laddr) >= len(laddrs) || laddrs[v.Laddr].Family == 0 {
				return
			}
			la := &laddrs[v.Laddr]
			c.Local = netip.AddrPortFrom(la.Addr.addr(la.Family), portOf(v.Lport))
			c = crossFamily(c)
		}
		switch proto {
		case ipvssync.ProtocolUDP:
			c.State = ipvssync.UDPNormal
			c.Flags |= ipvssync.Inactive // IPVS counts UDP inactive
		case ipvssync.ProtocolTCP:
			if !syncStates[v.State] {
				return
			}
			c.State = uint16(v.State)
			if v.State != uint8(xlbXlbCtStateXLB_CT_ESTABLISHED) {
				c.Flags |= ipvssync.Inactive
			}
		default:
			return
		}
		each(syncd.Record{Conn: c, Seen: time.Duration(v.LastSeen)})
	}
	keys, vals := make([]xlbConnKey, 4096), make([]xlbConn, 4096)
	err = x.each4(keys, vals, func(k *xlbConnKey, v *xlbConn) {
		record(k.Proto, netip.AddrPortFrom(addrOf(k.Src), portOf(k.Sport)), netip.AddrPortFrom(addrOf(k.Dst), portOf(k.Dport)),
			v, ours(x.synced, *k, v))
	})
	if err != nil {
		return fmt.Errorf("read connections: %w", err)
	}
	keys6 := make([]xlbConnKey6, len(vals))
	err = readBatches(x.objs.Conns6, keys6, vals, func(i int) {
		k := keys6[i]
		record(k.Proto, netip.AddrPortFrom(addr6(k.Src), portOf(k.Sport)), netip.AddrPortFrom(addr6(k.Dst), portOf(k.Dport)),
			&vals[i], ours(x.synced6, k, &vals[i]))
	})
	if err != nil {
		return fmt.Errorf("read IPv6 connections: %w", err)
	}
	tkeys, tvals := make([]xlbTmplKey, 1024), make([]xlbTmpl, 1024)
	err = readBatches(x.objs.Templates, tkeys, tvals, func(i int) {
		k, v := &tkeys[i], &tvals[i]
		r := liveReal(reals, v.Real, v.Gen)
		if r == nil || (expired(now, v.LastSeen, v.TimeoutS) && v.Controls <= 0) {
			return
		}
		if m, ok := x.syncedTmpl[*k]; ok {
			if m.lastSeen == v.LastSeen {
				return
			}
			delete(x.syncedTmpl, *k)
		}
		// As IPVS sends a template: client port 0, TEMPLATE|INACTIVE,
		// state NONE, the persistence timeout.
		each(syncd.Record{Conn: ipvssync.Conn{
			Protocol: k.Proto,
			Client:   netip.AddrPortFrom(k.Client.addr(k.Family), 0),
			Virtual:  netip.AddrPortFrom(k.Vip.addr(k.Family), portOf(k.Vport)),
			Dest:     netip.AddrPortFrom(r.Addr.addr(r.Family), portOf(r.Port)),
			Flags:    fwd(r) | ipvssync.Template | ipvssync.Inactive,
			State:    ipvssync.TemplateNone,
			Timeout:  time.Duration(v.TimeoutS) * time.Second,
		}, Seen: time.Duration(v.LastSeen)})
	})
	if err != nil {
		return fmt.Errorf("read persistence templates: %w", err)
	}
	return nil
}

// ours says whether a flow is this director's to send: not installed
// from its master, or forwarded here since (its mark then goes).
func ours[K comparable](synced map[K]syncedMark, k K, v *xlbConn) bool {
	m, ok := synced[k]
	if !ok {
		return true
	}
	if m.lastSeen == v.LastSeen && m.state == v.State {
		return false
	}
	delete(synced, k)
	return true
}

// destPort is the port a flow goes to on its real: the real's, or the
// client's destination port (vport) for a real of port 0 (all ports).
func destPort(r *xlbReal, vport uint16) uint16 {
	if r.Port != 0 {
		return portOf(r.Port)
	}
	return vport
}

// realPort is destPort for a real as configured.
func realPort(r *realState, vport uint16) uint16 {
	if r.Port != 0 {
		return r.Port
	}
	return vport
}

// liveReal is the real a flow or template of real slot and generation
// gen still goes to, nil when the slot was freed or reused since.
func liveReal(reals []xlbReal, slot, gen uint32) *xlbReal {
	if int(slot) >= len(reals) {
		return nil
	}
	r := &reals[slot]
	if r.Gen != gen || r.Flags&realPresent == 0 {
		return nil
	}
	return r
}

// expired: an entry last seen at lastSeen (bpf_ktime_get_ns) has outlived
// its timeout at now, as the sweeper judges it.
func expired(now, lastSeen uint64, timeoutS uint32) bool {
	return now > lastSeen && now-lastSeen > uint64(timeoutS)*uint64(time.Second)
}

// crossFamily makes a FULLNAT flow whose real is of the other family
// than its client and VIP one record, all of whose addresses IPVS's
// record has of one family: IPv6, an IPv4 address IPv4-mapped. NAT64's
// IPv4 real goes so in its IPv6 record; NAT46's IPv4 client and VIP in
// the record of its IPv6 real. (A kernel backup installs such a record
// as a flow no packet of its own matches.)
func crossFamily(c ipvssync.Conn) ipvssync.Conn {
	mapped := func(ap netip.AddrPort) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
	}
	switch {
	case c.Client.Addr().Is6() && c.Dest.Addr().Is4():
		c.Dest = mapped(c.Dest)
	case c.Client.Addr().Is4() && c.Dest.Addr().Is6():
		c.Client, c.Virtual = mapped(c.Client), mapped(c.Virtual)
	}
	return c
}

// sameFamily undoes crossFamily: a record whose client and VIP are
// IPv4-mapped and whose real is not is NAT46's; one whose real alone is,
// NAT64's.
func sameFamily(c ipvssync.Conn) ipvssync.Conn {
	switch cl, v, d := c.Client.Addr(), c.Virtual.Addr(), c.Dest.Addr(); {
	case cl.Is4In6() && v.Is4In6() && !d.Is4In6():
		c.Client = netip.AddrPortFrom(cl.Unmap(), c.Client.Port())
		c.Virtual = netip.AddrPortFrom(v.Unmap(), c.Virtual.Port())
	case d.Is4In6():
		c.Dest = netip.AddrPortFrom(d.Unmap(), c.Dest.Port())
	}
	return c
}

// SyncInstall implements syncd.Table: the records of one message from a
// master, installed as IPVS's backup installs them. A record is found by
// (protocol, client, virtual service); one whose service or real this
// director does not have is skipped, as the kernel leaves it unbound (an
// XDP flow cannot wait for its real). An existing flow to another real is
// replaced, unless the record is INACTIVE (stale, as the kernel judges
// it); to the same real, its state and timer are updated. The timer
// restarts with the record's timeout (the local table's for 0; 3 minutes
// for a template), and the real's ActiveConn/InActConn follow.
func (x *Dataplane) SyncInstall(conns []ipvssync.Conn) (syncd.Installed, error) {
	var res syncd.Installed
	conns = slices.Clone(conns)
	for i := range conns {
		conns[i] = sameFamily(conns[i])
	}
	x.applyMu.Lock()
	defer x.applyMu.Unlock()
	type target struct {
		svc   *svcState
		real  *realState
		gen   uint32
		laddr uint32 // FULLNAT: the local address's slot
	}
	x.mu.Lock()
	find := func(c ipvssync.Conn) (target, string) {
		if c.FWMark != 0 {
			return target{}, "fwmark service"
		}
		key := dataplane.ServiceKey{Addr: c.Virtual.Addr(), Port: c.Virtual.Port(), Protocol: lvs.Protocol(c.Protocol)}
		s := x.state.services[key]
		if s == nil {
			key.Port = 0
			s = x.state.services[key]
		}
		if s == nil {
			return target{}, "no such service"
		}
		dest := c.Dest.Addr()
		for _, r := range s.reals {
			if r.Addr == dest && (r.Port == c.Dest.Port() || r.Port == 0) {
				t := target{svc: s, real: r, gen: x.state.realGen[r.slot]}
				if r.Forward != lvs.FNAT || c.IsTemplate() {
					return t, ""
				}
				// A FULLNAT flow goes on only from the local address
				// and port its real knows: one of this service's.
				la := c.Local.Addr()
				switch slot, ok := x.state.laddrAt[la]; {
				case !c.Local.IsValid():
					return target{}, "FULLNAT real, and the record has no local address (a kernel master's)"
				case !ok || !slices.Contains(s.local, la):
					return target{}, fmt.Sprintf("local address %s is not one of the service's", la)
				default:
					t.laddr = slot
				}
				return t, ""
			}
		}
		return target{}, "no such real"
	}
	targets := make([]target, len(conns))
	for i, c := range conns {
		var why string
		targets[i], why = find(c)
		if why != "" {
			res.Skipped++
			res.Reason = why + ": " + c.String()
		}
	}
	x.mu.Unlock()

	now := monotonicNow()
	adjust := map[uint32]xlbConnCounts{}
	count := func(slot uint32, state uint8, n int64) {
		a := adjust[slot]
		if stateActive(state) {
			a.Active += n
		} else {
			a.Inactive += n
		}
		adjust[slot] = a
	}
	x.syncMu.Lock()
	defer x.syncMu.Unlock()
	var errs []error
	for i, c := range conns {
		t := targets[i]
		if t.svc == nil {
			continue
		}
		var err error
		var installed bool
		if c.IsTemplate() {
			installed, err = x.installTemplate(c, t.real, t.gen, now)
		} else {
			installed, err = x.installConn(c, t.svc, t.real, t.gen, t.laddr, now, count)
		}
		switch {
		case err != nil:
			errs = append(errs, err)
		case installed:
			res.Installed++
		default:
			res.Stale++
		}
	}
	// A flow replaced may have a hint of the established-flow cache.
	if x.hintsStale {
		x.hintsStale = false
		if err := x.forgetFlowHints(); err != nil {
			errs = append(errs, err)
		}
	}
	// The counts go to the program's counters with the next flush: the
	// adjust program walks every real's slot, too dear for each message.
	for slot, d := range adjust {
		p := x.pendingAdjust[slot]
		p.Active += d.Active
		p.Inactive += d.Inactive
		x.pendingAdjust[slot] = p
	}
	if time.Since(x.adjustedAt) >= adjustEvery {
		if err := x.flushAdjustLocked(); err != nil {
			return res, err
		}
	}
	return res, errors.Join(errs...)
}

// adjustEvery is how often, at most, installs from a master move the
// reals' ActiveConn/InActConn; the sweep flushes them too.
const adjustEvery = 100 * time.Millisecond

// flushAdjustLocked applies the count changes of installed records to
// the program's counters (applyMu held).
func (x *Dataplane) flushAdjustLocked() error {
	x.adjustedAt = time.Now()
	if len(x.pendingAdjust) == 0 {
		return nil
	}
	for slot, d := range x.pendingAdjust {
		if err := x.objs.ConnAdjust.Update(&slot, &d, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write count correction: %w", err)
		}
	}
	clear(x.pendingAdjust)
	if _, err := x.objs.XlbAdjust.Run(&ebpf.RunOptions{Data: make([]byte, 64)}); err != nil {
		return fmt.Errorf("run count correction: %w", err)
	}
	return nil
}

// stateActive is the program's state_active: the states counted in
// ActiveConn.
func stateActive(s uint8) bool {
	switch xlbXlbCtState(s) {
	case xlbXlbCtStateXLB_CT_ESTABLISHED, xlbXlbCtStateXLB_CT_SYN_SENT, xlbXlbCtStateXLB_CT_SYN_RECV, xlbXlbCtStateXLB_CT_SYNACK:
		return true
	}
	return false
}

// wireTimeout is a record's timeout in whole seconds, or the local one
// for 0.
func (x *Dataplane) wireTimeout(c ipvssync.Conn, state uint8) uint32 {
	if c.Timeout > 0 {
		return uint32(c.Timeout / time.Second)
	}
	if c.IsTemplate() {
		return 180
	}
	var v uint32
	s := xlbXlbCtState(state)
	if err := x.objs.Timeouts.Lookup(&s, &v); err != nil || v == 0 {
		return defaultTimeouts[state]
	}
	return v
}

// connValue is the flow-table entry of a record (a FULLNAT real's from
// local address slot laddr), and false for a protocol the program does
// not track.
func (x *Dataplane) connValue(c ipvssync.Conn, s *svcState, r *realState, gen, laddr uint32, now uint64) (xlbConn, bool) {
	var state uint8
	switch c.Protocol {
	case ipvssync.ProtocolTCP:
		state = uint8(c.State)
	case ipvssync.ProtocolUDP:
		state = uint8(xlbXlbCtStateXLB_CT_UDP)
	default:
		return xlbConn{}, false
	}
	v := xlbConn{Real: r.slot, Gen: gen, LastSeen: now, Svc: s.idx, TimeoutS: x.wireTimeout(c, state),
		State: state, InPkts: 3}
	switch r.Forward {
	case lvs.NAT:
		v.Flags = connNAT
	case lvs.FNAT:
		v.Flags = connNAT | connFNAT
		v.Laddr, v.Lport = uint8(laddr), port16(c.Local.Port())
	}
	return v, true
}

// installConn installs a flow record in its family's flow table; a
// FULLNAT flow's local port first (fnatPort).
func (x *Dataplane) installConn(c ipvssync.Conn, s *svcState, r *realState, gen, laddr uint32, now uint64, count func(uint32, uint8, int64)) (done bool, err error) {
	v, ok := x.connValue(c, s, r, gen, laddr, now)
	if !ok {
		return false, nil
	}
	if r.Forward == lvs.FNAT {
		taken, ok, perr := x.fnatPort(c, r, laddr, now)
		if perr != nil || !ok {
			return false, perr
		}
		// A port this record took goes back if its flow is not made.
		defer func() {
			if !done && taken != nil {
				err = errors.Join(err, taken())
			}
		}()
	}
	if c.Virtual.Addr().Is4() {
		k := xlbConnKey{Src: ip4(c.Client.Addr()), Dst: ip4(c.Virtual.Addr()), Sport: port16(c.Client.Port()),
			Dport: port16(c.Virtual.Port()), Proto: c.Protocol}
		done, err = installFlow(x, x.flows4(), k, v, c, r, gen, now, count)
		if done && err == nil {
			err = x.installed(c, k, r, v.State, now)
		}
		return done, err
	}
	k := xlbConnKey6{Src: words6(c.Client.Addr()), Dst: words6(c.Virtual.Addr()), Sport: port16(c.Client.Port()),
		Dport: port16(c.Virtual.Port()), Proto: c.Protocol}
	done, err = installFlow(x, x.objs.Conns6, k, v, c, r, gen, now, count)
	if !done || err != nil {
		return done, err
	}
	x.synced6[k] = syncedMark{lastSeen: now, state: v.State}
	if r.Forward == lvs.NAT {
		rport := realPort(r, c.Virtual.Port())
		rk := xlbConnKey6{Src: words6(r.Addr), Dst: k.Src, Sport: port16(rport), Dport: k.Sport, Proto: k.Proto}
		nr := xlbNatReply{Vip: addrKey(c.Virtual.Addr()), Vport: k.Dport, Family: family(c.Virtual.Addr())}
		if err := x.objs.NatReplies6.Update(&rk, &nr, ebpf.UpdateAny); err != nil {
			return true, fmt.Errorf("install %s's reply: %w", c, err)
		}
	}
	return true, nil
}

// fnatPort takes a synced FULLNAT flow's local port toward its real, as
// the program takes one (an entry of fnat_ports, or fnat_ports6 for an
// IPv6 real, inserted only where none is): held already for the same
// client, it is the flow's; held for another, the record is stale (false)
// rather than two flows answered on one port. give, when not nil, gives
// back the port this call took.
func (x *Dataplane) fnatPort(c ipvssync.Conn, r *realState, laddr uint32, now uint64) (give func() error, ok bool, err error) {
	rport := realPort(r, c.Virtual.Port())
	v := xlbFnatPort{Nr: xlbNatReply{Vip: addrKey(c.Virtual.Addr()), Vport: port16(c.Virtual.Port()), Family: family(c.Virtual.Addr())},
		Client: addrKey(c.Client.Addr()), Cport: port16(c.Client.Port()), Laddr: uint8(laddr), Taken: now}
	mine := func(o xlbFnatPort) bool {
		return o.Nr == v.Nr && o.Client == v.Client && o.Cport == v.Cport && o.Laddr == v.Laddr
	}
	if r.Addr.Is4() {
		k := xlbConnKey{Src: ip4(r.Addr), Dst: ip4(c.Local.Addr()), Sport: port16(rport), Dport: port16(c.Local.Port()), Proto: c.Protocol}
		return takePort(x.objs.FnatPorts, k, v, mine)
	}
	k := xlbConnKey6{Src: words6(r.Addr), Dst: words6(c.Local.Addr()), Sport: port16(rport), Dport: port16(c.Local.Port()), Proto: c.Protocol}
	return takePort(x.objs.FnatPorts6, k, v, mine)
}

func takePort[K any](m *ebpf.Map, k K, v xlbFnatPort, mine func(xlbFnatPort) bool) (func() error, bool, error) {
	err := m.Update(&k, &v, ebpf.UpdateNoExist)
	if err == nil {
		return func() error { return m.Delete(&k) }, true, nil
	}
	if !errors.Is(err, ebpf.ErrKeyExist) {
		return nil, false, fmt.Errorf("take a FULLNAT port: %w", err)
	}
	var old xlbFnatPort
	if err := m.Lookup(&k, &old); err != nil {
		return nil, false, nil // went meanwhile: the next record takes it
	}
	return nil, mine(old), nil
}

// flowStore is a flow table as installFlow writes it: a map, or the
// IPv4 table's array with its LRU (flows4).
type flowStore interface {
	Update(key, value any, flags ebpf.MapUpdateFlags) error
	Lookup(key, out any) error
}

// installFlow writes a record's flow v under k in table, as IPVS's backup
// takes a record: new, or replacing the flow of the same client unless
// the record is INACTIVE and that flow goes to another real; the reals'
// counts follow (count).
func installFlow[K any](x *Dataplane, table flowStore, k K, v xlbConn, c ipvssync.Conn, r *realState, gen uint32, now uint64, count func(uint32, uint8, int64)) (bool, error) {
	// Most records of a dump are new here: one syscall for them. (A
	// batch cannot say "only if new": the kernel takes no such flag
	// in a batch update.)
	state := v.State
	err := table.Update(&k, &v, ebpf.UpdateNoExist)
	if err == nil {
		count(r.slot, state, 1)
		return true, nil
	}
	if !errors.Is(err, ebpf.ErrKeyExist) {
		return false, fmt.Errorf("install %s: %w", c, err)
	}
	var old xlbConn
	exists := table.Lookup(&k, &old) == nil && old.Retired == 0
	same := exists && old.Real == r.slot && old.Gen == gen && !expired(now, old.LastSeen, old.TimeoutS)
	switch {
	case same:
		v.Flags = old.Flags
		v.TmplMask = old.TmplMask
		v.InPkts = old.InPkts
		count(r.slot, old.State, -1)
	case exists:
		if c.Flags&ipvssync.Inactive != 0 && !expired(now, old.LastSeen, old.TimeoutS) {
			return false, nil // to another real and INACTIVE: stale, as the kernel judges it
		}
		// The old flow ends here: off its real's counts (the program
		// counted it when it made it, the sweeper will not see it
		// end), if that real is still the one it was made with.
		if int(old.Real) < len(x.state.realGen) && x.state.realGen[old.Real] == old.Gen {
			count(old.Real, old.State, -1)
		}
	}
	if err := table.Update(&k, &v, ebpf.UpdateAny); err != nil {
		return false, fmt.Errorf("install %s: %w", c, err)
	}
	x.hintsStale = true
	count(r.slot, state, 1)
	return true, nil
}

// installed marks an installed flow as the master's and, for NAT, writes
// its reply entry.
func (x *Dataplane) installed(c ipvssync.Conn, k xlbConnKey, r *realState, state uint8, now uint64) error {
	x.synced[k] = syncedMark{lastSeen: now, state: state}
	if r.Forward == lvs.NAT {
		rport := realPort(r, c.Virtual.Port())
		rk := xlbConnKey{Src: ip4(r.Addr), Dst: k.Src, Sport: port16(rport), Dport: k.Sport, Proto: k.Proto}
		nr := xlbNatReply{Vip: addrKey(c.Virtual.Addr()), Vport: k.Dport, Family: family(c.Virtual.Addr())}
		if err := x.objs.NatReplies.Update(&rk, &nr, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("install %s's reply: %w", c, err)
		}
	}
	return nil
}

func (x *Dataplane) installTemplate(c ipvssync.Conn, r *realState, gen uint32, now uint64) (bool, error) {
	k := xlbTmplKey{Client: addrKey(c.Client.Addr()), Vip: addrKey(c.Virtual.Addr()), Vport: port16(c.Virtual.Port()),
		Proto: c.Protocol, Family: family(c.Client.Addr())}
	var old xlbTmpl
	have := x.objs.Templates.Lookup(&k, &old) == nil
	v := xlbTmpl{Real: r.slot, Gen: gen, LastSeen: now, TimeoutS: x.wireTimeout(c, 0)}
	if have {
		if old.Real != r.slot || old.Gen != gen {
			if c.Flags&ipvssync.Inactive != 0 && (old.Controls > 0 || !expired(now, old.LastSeen, old.TimeoutS)) {
				return false, nil // stale, as the kernel takes an INACTIVE record to another real
			}
		} else {
			v.Controls = old.Controls
		}
	}
	if err := x.objs.Templates.Update(&k, &v, ebpf.UpdateAny); err != nil {
		return false, fmt.Errorf("install %s: %w", c, err)
	}
	x.syncedTmpl[k] = syncedMark{lastSeen: now}
	return true, nil
}

// forgetSynced drops the marks of entries that are gone, so that the
// marks do not outgrow the tables.
func (x *Dataplane) forgetSynced() {
	x.syncMu.Lock()
	defer x.syncMu.Unlock()
	for k := range x.synced {
		var v xlbConn
		if x.flows4().Lookup(&k, &v) != nil {
			delete(x.synced, k)
		}
	}
	for k := range x.synced6 {
		var v xlbConn
		if x.objs.Conns6.Lookup(&k, &v) != nil {
			delete(x.synced6, k)
		}
	}
	for k := range x.syncedTmpl {
		var v xlbTmpl
		if x.objs.Templates.Lookup(&k, &v) != nil {
			delete(x.syncedTmpl, k)
		}
	}
}

var _ dataplane.SyncDaemons = (*Dataplane)(nil)

// StartDaemon implements dataplane.SyncDaemons with xlb's own daemons
// (package syncd) on this data plane's flow table.
func (x *Dataplane) StartDaemon(d dataplane.SyncDaemon) error { return x.sync.StartDaemon(d) }

// StopDaemon implements dataplane.SyncDaemons.
func (x *Dataplane) StopDaemon(backup bool) error { return x.sync.StopDaemon(backup) }

// Daemons implements dataplane.SyncDaemons.
func (x *Dataplane) Daemons() ([]dataplane.SyncDaemon, error) { return x.sync.Daemons() }

// SyncStats are the sync daemons' counts.
func (x *Dataplane) SyncStats() syncd.Stats { return x.sync.Stats() }
