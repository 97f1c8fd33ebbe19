package xdp

// The data-plane fuzzer: frames, valid and mutated and malformed, through
// the program by BPF_PROG_TEST_RUN, each judged by expectVerdict, a Go
// model of the verdict table at the top of bpf/xdp_lb.bpf.c. A frame
// forwarded that the model forbids, any other verdict, stat or fzRewrite the
// model does not allow, or an XDP_ABORTED fails with a hex dump.
//
// TestXDPFuzzCorpus runs a generated set (every seed class, each mutated,
// from a fixed PRNG seed) in make test; FuzzXDPVerdicts lets go test
// -fuzz search further (make fuzz), from the same generator and the
// seeds in testdata/fuzz/FuzzXDPVerdicts, each named for what it covers.
// TestXDPFuzzFindings holds what the fuzzer found the program doing
// against the table, minimized.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// ---- the configuration the fuzzer runs against ----

var (
	fzStandbyVIP = netip.MustParseAddr("10.0.0.101") // its services are on standby (VRRP BACKUP here)
	fzElsewhere  = netip.MustParseAddr("10.0.0.200") // no VIP
	fzRouter     = netip.MustParseAddr("192.0.2.254")
	// Client ports of the flows fuzzWarmFrames establishes (from client),
	// which seeds reply to, quote and send more packets of.
	fzKnownPorts = []uint16{40000, 40001, 40002, 40003, 40004, 40005, 40006, 40007}
)

// fuzzReal is a real as the model sees it: where a frame to it goes.
type fuzzReal struct {
	dataplane.Real
	mac     net.HardwareAddr
	ingress bool // on the link frames come in on (XDP_TX); else behind dummy0 (XDP_REDIRECT)
}

func (r fuzzReal) String() string {
	m := "DR"
	if r.Forward == lvs.NAT {
		m = "NAT"
	}
	return fmt.Sprintf("%s %s (%s)", m, r.Real, r.mac)
}

// fuzzService is a service as the model sees it.
type fuzzService struct {
	key     dataplane.ServiceKey
	sched   string
	persist time.Duration
	standby bool
	reals   []fuzzReal
}

// candidates are the reals a new flow of s may go to: those with weight,
// or any (a persistence template keeps a quiesced real).
func (s *fuzzService) candidates() []fuzzReal {
	var out []fuzzReal
	for _, r := range s.reals {
		if r.Weight > 0 || s.persist > 0 {
			out = append(out, r)
		}
	}
	return out
}

// fuzzServices: DR and NAT, TCP and UDP, reals on the ingress link and
// behind another interface, a service with only a quiesced real, one with
// persistence, and a VIP on standby.
func fuzzServices() []fuzzService {
	dr := func(i int, port uint16, w int32) fuzzReal {
		return fuzzReal{Real: dataplane.Real{Addr: realAddr(i), Port: port, Weight: w, Forward: lvs.DR}, mac: realMAC(i), ingress: i%2 == 1}
	}
	nat := func(i int, port uint16) fuzzReal {
		return fuzzReal{Real: dataplane.Real{Addr: realAddr(i), Port: port, Weight: 1, Forward: lvs.NAT}, mac: realMAC(i), ingress: i%2 == 1}
	}
	key := func(a netip.Addr, port uint16, p lvs.Protocol) dataplane.ServiceKey {
		return dataplane.ServiceKey{Addr: a, Port: port, Protocol: p}
	}
	return []fuzzService{
		{key: key(vip, 80, lvs.TCP), sched: "rr", reals: []fuzzReal{dr(1, 80, 1), dr(2, 80, 1)}},
		{key: key(vip, 53, lvs.UDP), sched: "rr", reals: []fuzzReal{dr(1, 53, 1), dr(2, 53, 1)}},
		{key: key(vip, 8080, lvs.TCP), sched: "rr", reals: []fuzzReal{nat(3, 8080), nat(4, 8081)}},
		{key: key(vip, 54, lvs.UDP), sched: "rr", reals: []fuzzReal{nat(3, 5353), nat(4, 5353)}},
		{key: key(vip, 9000, lvs.TCP), sched: "wrr", reals: []fuzzReal{dr(1, 9000, 0)}},
		{key: key(vip, 443, lvs.TCP), sched: "rr", persist: 300 * time.Second, reals: []fuzzReal{dr(1, 443, 1), dr(2, 443, 1)}},
		{key: key(fzStandbyVIP, 80, lvs.TCP), sched: "rr", standby: true, reals: []fuzzReal{dr(1, 80, 1), dr(2, 80, 1)}},
		{key: key(fzStandbyVIP, 8080, lvs.TCP), sched: "rr", standby: true, reals: []fuzzReal{nat(3, 8080)}},
	}
}

// ---- what the model needs to know of the program's flow tables ----

// fuzzKey is a flow's key as the program builds it from a packet.
type fuzzKey struct {
	src, dst     netip.Addr
	sport, dport uint16
	proto        uint8
}

// fzMaybe is the model's answer where a clock decides: a flow on the edge
// of its timeout may be either.
type fzMaybe uint8

const (
	fzNo fzMaybe = iota
	fzYes
	fzUnsure
)

func (m fzMaybe) values() []bool {
	switch m {
	case fzYes:
		return []bool{true}
	case fzUnsure:
		return []bool{false, true}
	}
	return []bool{false}
}

// fuzzFlow is an entry of the flow tables (flow table, else half-open).
type fuzzFlow struct {
	real    *fuzzReal // the real in the flow's slot (nil: none the model knows)
	live    bool      // the slot still holds the flow's real (present, same generation)
	standby bool      // the slot's real is on standby
	state   uint8     // enum xlb_ct_state
	expired fzMaybe
	retired bool // its end has been claimed
	half    bool
}

func (f fuzzFlow) String() string {
	return fmt.Sprintf("flow{real %v live %v standby %v %s expired %d retired %v half-open %v}",
		f.real, f.live, f.standby, stateName(f.state), f.expired, f.retired, f.half)
}

// fuzzReply is a NAT flow's reverse entry: the VIP and port its replies
// leave from.
type fuzzReply struct {
	vip   netip.Addr
	vport uint16
}

// fzFlowView is what the model may ask of the flow tables: whether a flow
// (or a NAT flow's reverse) exists for a key, and what it holds. The
// verdict table's rows for flows ("TCP without SYN, no flow", "ICMP error
// about a flow", "flow whose real was removed") need it; everything else
// the model reads from the frame and the services.
type fzFlowView interface {
	flow(k fuzzKey) (fuzzFlow, bool)
	reply(k fuzzKey) (fuzzReply, bool)
}

// ---- the model ----

// The rows of the verdict table (and the model's finer cuts of them), in
// the order the verdict tally prints them.
const (
	clsNotIPv4      = "not IPv4"
	clsBadHeader    = "bad IPv4 header"
	clsBadLength    = "bad IPv4 total length"
	clsFragVIP      = "fragment to a VIP"
	clsFragOther    = "fragment, not to a VIP"
	clsTruncVIP     = "L4 header cut short, to a VIP"
	clsTruncOther   = "L4 header cut short, not to a VIP"
	clsCutVIP       = "datagram cut short by the frame, to a VIP"
	clsCutOther     = "datagram cut short by the frame, not to a VIP"
	clsNotService   = "not for a service"
	clsOtherProto   = "other protocol to a VIP"
	clsICMPNoFlow   = "ICMP to a VIP, no flow of ours"
	clsICMPFlow     = "ICMP error about a flow"
	clsICMPFromReal = "ICMP error from a NAT real"
	clsNATReply     = "NAT reply"
	clsStandby      = "service on standby"
	clsNotSyn       = "TCP without SYN, no flow"
	clsNoDest       = "new flow, no real"
	clsNewFlow      = "new flow"
	clsFlow         = "packet of a flow"
	clsDestGone     = "flow whose real was removed"
	clsRetiring     = "SYN on a retiring flow"
	clsRefused      = "refused by BPF_PROG_TEST_RUN"
)

var fuzzClasses = []string{clsNotIPv4, clsBadHeader, clsBadLength, clsFragVIP, clsFragOther,
	clsTruncVIP, clsTruncOther, clsCutVIP, clsCutOther, clsNotService, clsOtherProto, clsICMPNoFlow, clsICMPFlow, clsICMPFromReal,
	clsNATReply, clsStandby, clsNotSyn, clsNoDest, clsNewFlow, clsFlow, clsDestGone, clsRetiring, clsRefused}

// fzOutKind says what the output frame must be.
type fzOutKind uint8

const (
	fzOutUntouched    fzOutKind = iota // byte-identical
	fzOutAny                           // dropped: not looked at
	fzOutForward                       // to one of the reals: DR re-addressed, NAT translated
	fzOutICMPForward                   // an ICMP error to its flow's real: NAT translated inside and out
	fzOutNATReply                      // source back to VIP:vport, handed to the kernel
	fzOutICMPFromReal                  // inner destination and outer source back to VIP:vport
)

// fzExpectation is one outcome the model allows.
type fzExpectation struct {
	class    string
	verdicts []uint32
	stats    []xlbXlbStat // each up by exactly one, every other counter unchanged
	optional []xlbXlbStat // may go up by one
	out      fzOutKind
	to       []fuzzReal // fzOutForward, fzOutICMPForward: one of these
	vip      netip.Addr // fzOutNATReply, fzOutICMPFromReal
	vport    uint16
	p        fuzzIPv4
	note     string // what the model read of the tables
}

func (e fzExpectation) forwards() bool {
	return slices.Contains(e.verdicts, xdpTX) || slices.Contains(e.verdicts, xdpRedirect)
}

func (e fzExpectation) String() string {
	var vs []string
	for _, v := range e.verdicts {
		vs = append(vs, fzVerdictName(v))
	}
	s := fmt.Sprintf("%q: %s", e.class, strings.Join(vs, "|"))
	for _, st := range e.stats {
		s += " stat " + statName(st)
	}
	if len(e.to) > 0 {
		s += fmt.Sprintf(" to %v", e.to)
	}
	if e.out == fzOutNATReply || e.out == fzOutICMPFromReal {
		s += fmt.Sprintf(" as %s", netip.AddrPortFrom(e.vip, e.vport))
	}
	if e.note != "" {
		s += " (" + e.note + ")"
	}
	return s
}

func fzPass(class string, stats ...xlbXlbStat) []fzExpectation {
	return []fzExpectation{{class: class, verdicts: []uint32{xdpPass}, stats: stats, out: fzOutUntouched}}
}

func fzDrop(class string, stat xlbXlbStat) []fzExpectation {
	return []fzExpectation{{class: class, verdicts: []uint32{xdpDrop}, stats: []xlbXlbStat{stat}, out: fzOutAny}}
}

// fuzzIPv4 is a frame's IPv4 datagram as the model reads it.
type fuzzIPv4 struct {
	l3, ihl, l4 int // offsets in the frame; ihl in bytes
	end         int // where the datagram ends in the frame
	proto       uint8
	src, dst    netip.Addr
	frag        bool
	cut         bool // the frame ends before the total length does
}

func fzBE16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

func fzAddr4(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }

// fuzzL3 is where a frame's IPv4 header starts: after Ethernet and at most
// one 802.1Q or 802.1ad tag (a second tag is not IPv4 to the program).
func fuzzL3(frame []byte) (int, bool) {
	if len(frame) < 14 {
		return 0, false
	}
	et, off := fzBE16(frame[12:]), 14
	if et == 0x8100 || et == 0x88a8 {
		if len(frame) < 18 {
			return 0, false
		}
		et, off = fzBE16(frame[16:]), 18
	}
	return off, et == 0x0800
}

// readIPv4 reads the frame's datagram. strict, it is what the kernel's
// ip_rcv_core takes for one, the checks RFC 1812 5.2.2 asks of a router
// (a total length no shorter than the header, a frame no shorter than the
// total length), bar the header checksum (see expectVerdict); the datagram
// ends where its total length says, the rest of the frame being link
// padding. Not strict, it is what the frame holds, as the program reads it.
func readIPv4(frame []byte, strict bool) (fuzzIPv4, string) {
	l3, ok := fuzzL3(frame)
	if !ok {
		return fuzzIPv4{}, clsNotIPv4
	}
	ip := frame[l3:]
	if len(ip) < 20 || ip[0]>>4 != 4 || ip[0]&0xf < 5 {
		return fuzzIPv4{}, clsBadHeader
	}
	p := fuzzIPv4{l3: l3, ihl: int(ip[0]&0xf) * 4, end: len(frame), proto: ip[9],
		src: fzAddr4(ip[12:]), dst: fzAddr4(ip[16:]), frag: fzBE16(ip[6:])&0x3fff != 0}
	p.l4 = l3 + p.ihl
	if strict {
		tot := int(fzBE16(ip[2:]))
		switch {
		case tot < p.ihl:
			return fuzzIPv4{}, clsBadLength
		case tot > len(ip): // a header past the frame too, as tot >= ihl
			p.cut = true
		default:
			p.end = l3 + tot
		}
	}
	return p, ""
}

// fuzzModel holds what expectVerdict reads besides the frame.
type fuzzModel struct {
	flows fzFlowView
	svcs  []fuzzService
}

// expectVerdict says what the verdict table at the top of
// bpf/xdp_lb.bpf.c allows the program to do with frame, given the
// services and the flows the tables hold: one or more expectations, any
// of which may match. The model's reading of the table:
//
//   - "bad IPv4 header" is what the kernel rejects before IPVS would see a
//     packet (ip_rcv_core; RFC 1812 5.2.2): version, IHL, a header the
//     frame does not hold, a total length shorter than the header. A
//     datagram the frame ends inside (its total length past the frame) is
//     cut short: dropped as truncated when it is to a VIP, as the table's
//     row says, and passed otherwise (fragments go as fragments). The header checksum is not among them: the table does
//     not ask the program to verify it, DR hands the packet on untouched
//     and NAT's incremental update keeps it as wrong, so the real drops it.
//   - The datagram ends where its total length says; the rest of the frame
//     is link padding, and an L4 header or a quote that runs into it is cut
//     short. Where the frame holds more or less than its total length says,
//     the program may read the frame instead where it passes or drops (an
//     ICMP quote read into the padding), never where it forwards: such a
//     packet is not to be forwarded (bpf/parse.h checks the total length;
//     TestXDPFuzzFindings keeps what the fuzzer found before it did).
//   - The TCP data offset and the UDP length are not read: IPVS does not
//     read them either, and the real's stack judges them.
//   - An ICMP error whose quote the program cannot read (source quench,
//     a quote with IP options, or of a fragment, or not IPv4) or about a
//     flow that has timed out but is still in the table may go either way;
//     it is never forwarded but to the real of a flow the tables hold.
//   - A new flow goes to any real of the service with weight (the
//     scheduler's choice is pkg/sched's tests' business); a packet of a
//     flow to that flow's real.
func expectVerdict(frame []byte, flows fzFlowView, svcs ...fuzzService) []fzExpectation {
	m := fuzzModel{flows: flows, svcs: svcs}
	exps := m.read(frame, true)
	l3, ok := fuzzL3(frame)
	if !ok || len(frame)-l3 < 20 || slices.ContainsFunc(exps, fzExpectation.forwards) {
		return exps
	}
	if ip := frame[l3:]; int(fzBE16(ip[2:])) == len(ip) && int(ip[0]&0xf)*4 <= len(ip) {
		return exps
	}
	// The frame holds more or less than the datagram: the program's
	// reading of it (as the frame holds it) is allowed unless it forwards.
	for _, e := range m.read(frame, false) {
		if !e.forwards() {
			e.class = exps[0].class
			exps = append(exps, e)
		}
	}
	return exps
}

func (m *fuzzModel) read(frame []byte, strict bool) []fzExpectation {
	p, cls := readIPv4(frame, strict)
	if cls != "" {
		return fzPass(cls)
	}
	exps := m.l4(frame, p)
	for i := range exps {
		exps[i].p = p
	}
	return exps
}

func (m *fuzzModel) l4(frame []byte, p fuzzIPv4) []fzExpectation {
	toVIP := m.activeVIP(p.dst)
	if p.frag {
		if toVIP {
			return fzDrop(clsFragVIP, xlbXlbStatXLB_STAT_FRAGMENT)
		}
		return fzPass(clsFragOther)
	}
	if p.cut {
		if toVIP {
			return fzDrop(clsCutVIP, xlbXlbStatXLB_STAT_TRUNCATED)
		}
		return fzPass(clsCutOther)
	}
	switch p.proto {
	case 6, 17:
		hdr := 20
		if p.proto == 17 {
			hdr = 8
		}
		if p.l4+hdr > p.end {
			if toVIP {
				return fzDrop(clsTruncVIP, xlbXlbStatXLB_STAT_TRUNCATED)
			}
			return fzPass(clsTruncOther)
		}
		return m.ports(frame, p)
	case 1:
		return m.icmp(frame, p, toVIP)
	}
	if toVIP {
		return fzPass(clsOtherProto)
	}
	return fzPass(clsNotService)
}

const (
	fzFIN = 0x01
	fzSYN = 0x02
	fzRST = 0x04
	fzACK = 0x10
)

func (m *fuzzModel) ports(frame []byte, p fuzzIPv4) []fzExpectation {
	k := fuzzKey{src: p.src, dst: p.dst, sport: fzBE16(frame[p.l4:]), dport: fzBE16(frame[p.l4+2:]), proto: p.proto}
	if r, ok := m.flows.reply(k); ok {
		return m.natReply(k, r)
	}
	if !m.anyVIP(p.dst) {
		return fzPass(clsNotService)
	}
	var flags uint8
	if p.proto == 6 {
		flags = frame[p.l4+13]
	}
	f, ok := m.flows.flow(k)
	if !ok {
		return m.newFlow(k, flags)
	}
	if f.live && f.standby {
		return fzPass(clsStandby, xlbXlbStatXLB_STAT_STANDBY)
	}
	var out []fzExpectation
	for _, expired := range f.expired.values() {
		out = append(out, m.onFlow(k, f, expired, flags)...)
	}
	for i := range out {
		out[i].note = f.String()
	}
	return out
}

// fzNotSyn: a TCP packet that may not start a flow (IPVS schedules a SYN
// without RST). fzPureSyn: one that starts a new connection on the ports of
// one in TIME_WAIT or CLOSE (conn_reuse_mode).
func fzNotSyn(k fuzzKey, flags uint8) bool {
	return k.proto == 6 && flags&(fzSYN|fzRST) != fzSYN
}

func fzPureSyn(k fuzzKey, flags uint8) bool {
	return k.proto == 6 && flags&(fzSYN|fzRST|fzACK) == fzSYN
}

func (m *fuzzModel) onFlow(k fuzzKey, f fuzzFlow, expired bool, flags uint8) []fzExpectation {
	if !expired && !f.retired {
		reuse := fzPureSyn(k, flags) && (!f.live || f.state == uint8(xlbXlbCtStateXLB_CT_TIME_WAIT) || f.state == uint8(xlbXlbCtStateXLB_CT_CLOSE))
		if f.live && !reuse {
			return fzForward(clsFlow, f.real)
		}
		if !reuse {
			return fzDrop(clsDestGone, xlbXlbStatXLB_STAT_DEST_GONE)
		}
		return m.newFlow(k, flags)
	}
	if fzNotSyn(k, flags) {
		return fzPass(clsNotSyn, xlbXlbStatXLB_STAT_NOT_SYN)
	}
	if f.retired {
		return fzDrop(clsRetiring, xlbXlbStatXLB_STAT_RETIRING)
	}
	return m.newFlow(k, flags)
}

func fzForward(class string, to ...*fuzzReal) []fzExpectation {
	e := fzExpectation{class: class, verdicts: []uint32{xdpTX, xdpRedirect}, out: fzOutForward,
		optional: []xlbXlbStat{xlbXlbStatXLB_STAT_PROMOTED}}
	for _, r := range to {
		if r != nil {
			e.to = append(e.to, *r)
		}
	}
	return []fzExpectation{e}
}

func (m *fuzzModel) newFlow(k fuzzKey, flags uint8) []fzExpectation {
	s := m.service(k.dst, k.dport, k.proto)
	if s == nil {
		return fzPass(clsNotService)
	}
	if s.standby {
		return fzPass(clsStandby, xlbXlbStatXLB_STAT_STANDBY)
	}
	if fzNotSyn(k, flags) {
		return fzPass(clsNotSyn, xlbXlbStatXLB_STAT_NOT_SYN)
	}
	to := s.candidates()
	if len(to) == 0 {
		return fzDrop(clsNoDest, xlbXlbStatXLB_STAT_NO_DEST)
	}
	e := fzForward(clsNewFlow)
	e[0].to, e[0].optional = to, nil
	return e
}

// natReply: a NAT real's packet to a client of one of its flows goes back
// as from the VIP (handed to the kernel to route: the rig's namespace has
// no route to the client), unless the flow's service is on standby.
func (m *fuzzModel) natReply(k fuzzKey, r fuzzReply) []fzExpectation {
	tr := []fzExpectation{{class: clsNATReply, verdicts: []uint32{xdpPass}, out: fzOutNATReply, vip: r.vip, vport: r.vport,
		stats:    []xlbXlbStat{xlbXlbStatXLB_STAT_NAT_REPLY, xlbXlbStatXLB_STAT_NAT_REPLY_KERNEL},
		optional: []xlbXlbStat{xlbXlbStatXLB_STAT_PROMOTED}}}
	fk := fuzzKey{src: k.dst, dst: r.vip, sport: k.dport, dport: r.vport, proto: k.proto}
	if f, ok := m.flows.flow(fk); ok && !f.retired {
		if f.standby {
			return fzPass(clsStandby, xlbXlbStatXLB_STAT_STANDBY)
		}
		return tr
	}
	if !m.activeVIP(r.vip) {
		return fzPass(clsStandby, xlbXlbStatXLB_STAT_STANDBY)
	}
	return tr
}

// fuzzQuote is the packet an ICMP error quotes, where the program reads
// it: an IPv4 header of 20 bytes right after the ICMP header, then ports.
type fuzzQuote struct {
	inner   int // offset of the quoted IPv4 header
	ports   int // offset of the quoted ports
	key     fuzzKey
	certain bool // the table's reading of the quote is the program's
}

// fzQuoteOf reads an ICMP error's quote. loose reads it as the table would
// where the program does not (source quench; a quote with IP options).
func fzQuoteOf(frame []byte, p fuzzIPv4, loose bool) (fuzzQuote, bool) {
	icmp := p.l4
	if icmp+8 > p.end {
		return fuzzQuote{}, false
	}
	switch typ := frame[icmp]; {
	case typ == 3, typ == 11:
	case loose && typ == 4:
	default:
		return fuzzQuote{}, false
	}
	q := fuzzQuote{inner: icmp + 8}
	if q.inner+20 > p.end {
		return fuzzQuote{}, false
	}
	in := frame[q.inner:]
	ihl := int(in[0]&0xf) * 4
	if (ihl != 20 && !loose) || ihl < 20 || (in[9] != 6 && in[9] != 17) {
		return fuzzQuote{}, false
	}
	q.ports = q.inner + ihl
	if q.ports+8 > p.end {
		return fuzzQuote{}, false
	}
	// The quote went from the VIP (or the real) to the client: the flow
	// is its reverse.
	q.key = fuzzKey{src: fzAddr4(in[16:]), dst: fzAddr4(in[12:]), sport: fzBE16(frame[q.ports+2:]), dport: fzBE16(frame[q.ports:]), proto: in[9]}
	q.certain = frame[icmp] != 4 && ihl == 20 && in[0]>>4 == 4 && fzBE16(in[6:])&0x1fff == 0
	return q, true
}

func (m *fuzzModel) icmp(frame []byte, p fuzzIPv4, toVIP bool) []fzExpectation {
	if toVIP {
		base := clsOtherProto
		if p.l4 < p.end && slices.Contains([]byte{3, 4, 5, 11, 12}, frame[p.l4]) {
			base = clsICMPNoFlow // an error type
		}
		for _, loose := range []bool{false, true} {
			q, ok := fzQuoteOf(frame, p, loose)
			if !ok {
				continue
			}
			f, ok := m.flows.flow(q.key)
			if !ok || !f.live || f.standby || f.real == nil {
				continue
			}
			fwd := fzExpectation{class: clsICMPFlow, verdicts: []uint32{xdpTX, xdpRedirect}, out: fzOutICMPForward,
				to: []fuzzReal{*f.real}, note: f.String()}
			if q.certain && !loose && f.expired == fzNo && !f.retired {
				return []fzExpectation{fwd}
			}
			return append(fzPass(base), fwd)
		}
		return fzPass(base)
	}
	q, ok := fzQuoteOf(frame, p, false)
	if !ok {
		return fzPass(clsNotService)
	}
	r, ok := m.flows.reply(q.key)
	if !ok || !m.activeVIP(r.vip) {
		return fzPass(clsNotService)
	}
	tr := fzExpectation{class: clsICMPFromReal, verdicts: []uint32{xdpPass}, out: fzOutICMPFromReal, vip: r.vip, vport: r.vport}
	if m.natReal(p.src) && q.certain {
		return []fzExpectation{tr}
	}
	// From elsewhere (the table does not say who may send the error; the
	// program's filter on the source is a hash), or quoting what it
	// cannot read: either.
	return append(fzPass(clsNotService), tr)
}

func (m *fuzzModel) service(a netip.Addr, port uint16, proto uint8) *fuzzService {
	for i, s := range m.svcs {
		if s.key.Addr == a && s.key.Port == port && uint8(s.key.Protocol) == proto {
			return &m.svcs[i]
		}
	}
	return nil
}

// activeVIP: a VIP this director serves now (the program's vips map).
func (m *fuzzModel) activeVIP(a netip.Addr) bool {
	return slices.ContainsFunc(m.svcs, func(s fuzzService) bool { return s.key.Addr == a && !s.standby })
}

// anyVIP: a VIP of any service, on standby or not.
func (m *fuzzModel) anyVIP(a netip.Addr) bool {
	return slices.ContainsFunc(m.svcs, func(s fuzzService) bool { return s.key.Addr == a })
}

func (m *fuzzModel) natReal(a netip.Addr) bool {
	for _, s := range m.svcs {
		for _, r := range s.reals {
			if r.Addr == a && r.Forward == lvs.NAT {
				return true
			}
		}
	}
	return false
}

// ---- checking an outcome against an fzExpectation ----

type fzStatDelta [xlbXlbStatXLB_STAT_MAX]int64

func (d fzStatDelta) String() string {
	var up []string
	for s, n := range d {
		if n != 0 {
			up = append(up, fmt.Sprintf("%s %+d", statName(xlbXlbStat(s)), n))
		}
	}
	if len(up) == 0 {
		return "none"
	}
	return strings.Join(up, ", ")
}

func (e *fzExpectation) check(in []byte, verdict uint32, out []byte, d fzStatDelta) error {
	if !slices.Contains(e.verdicts, verdict) {
		return fmt.Errorf("verdict %s", fzVerdictName(verdict))
	}
	for s := xlbXlbStat(0); s < xlbXlbStatXLB_STAT_MAX; s++ {
		want := int64(0)
		if slices.Contains(e.stats, s) {
			want = 1
		}
		if d[s] != want && !(slices.Contains(e.optional, s) && d[s] == 1) {
			return fmt.Errorf("stat %s went up by %d, not %d", statName(s), d[s], want)
		}
	}
	switch e.out {
	case fzOutUntouched:
		if !bytes.Equal(in, out) {
			return errors.New("the frame was changed")
		}
	case fzOutForward, fzOutICMPForward:
		return e.checkForward(in, verdict, out)
	case fzOutNATReply:
		return fzNATRewrite(e.p, false, e.vip, e.vport).check(in, out)
	case fzOutICMPFromReal:
		return fzICMPRewrite(in, e.p, false, e.vip, e.vport).check(in, out)
	}
	return nil
}

func (e *fzExpectation) checkForward(in []byte, verdict uint32, out []byte) error {
	if len(out) != len(in) {
		return fmt.Errorf("forwarded %d bytes of %d", len(out), len(in))
	}
	i := slices.IndexFunc(e.to, func(r fuzzReal) bool { return bytes.Equal(out[0:6], r.mac) })
	if i < 0 {
		return fmt.Errorf("forwarded to MAC %s, no real's of %v", net.HardwareAddr(out[0:6]), e.to)
	}
	r := e.to[i]
	if !bytes.Equal(out[6:12], srcMAC) {
		return fmt.Errorf("forwarded from MAC %s, not the egress interface's %s", net.HardwareAddr(out[6:12]), srcMAC)
	}
	if want := map[bool]uint32{true: xdpTX, false: xdpRedirect}[r.ingress]; verdict != want {
		return fmt.Errorf("%s to %v, whose link wants %s", fzVerdictName(verdict), r, fzVerdictName(want))
	}
	if r.Forward != lvs.NAT {
		if !bytes.Equal(out[12:], in[12:]) {
			return fmt.Errorf("DR to %v changed the packet", r)
		}
		return nil
	}
	if e.out == fzOutICMPForward {
		return fzICMPRewrite(in, e.p, true, r.Addr, r.Port).check(in, out)
	}
	if err := fzNATRewrite(e.p, true, r.Addr, r.Port).check(in, out); err != nil {
		return fmt.Errorf("NAT to %v: %w", r, err)
	}
	// Said plainly: a datagram that came with valid checksums leaves with
	// valid ones.
	p := e.p
	if onesSum(in, [2]int{p.l3, p.l4}) == 0xffff && onesSum(out, [2]int{p.l3, p.l4}) != 0xffff {
		return fmt.Errorf("NAT to %v: the IPv4 header checksum is no longer valid", r)
	}
	if p.end <= len(in) && fzL4Valid(in, p) && !fzL4Valid(out, p) {
		return fmt.Errorf("NAT to %v: the L4 checksum is no longer valid", r)
	}
	return nil
}

// fzL4Valid: the TCP or UDP checksum of the datagram (to p.end) verifies.
func fzL4Valid(b []byte, p fuzzIPv4) bool {
	if p.proto == 17 && fzBE16(b[p.l4+6:]) == 0 {
		return true
	}
	pseudo := uint32(fzBE16(b[p.l3+12:])) + uint32(fzBE16(b[p.l3+14:])) + uint32(fzBE16(b[p.l3+16:])) + uint32(fzBE16(b[p.l3+18:]))
	pseudo += uint32(p.proto) + uint32(p.end-p.l4)
	return testutil.Checksum(b[p.l4:p.end], pseudo) == 0
}

// fzRewrite is what a translation may change: fields set to new values,
// checksum fields, and nothing else; each checksum's one's complement sum
// over what it covers stays what it was (RFC 1624: an incremental update
// keeps a right checksum right and a wrong one as wrong).
type fzRewrite struct {
	from   int // bytes before it are checked apart (a forward's MACs)
	sets   []fzFieldSet
	sums   []int // offsets of checksum fields
	groups []fzSumGroup
}

type fzFieldSet struct {
	what string
	off  int
	val  []byte
}

type fzSumGroup struct {
	what   string
	ranges [][2]int
	udp    int // offset of a UDP checksum (0 there means none, and stays so), or -1
}

func (w fzRewrite) check(in, out []byte) error {
	if len(in) != len(out) {
		return fmt.Errorf("%d bytes out of %d", len(out), len(in))
	}
	may := func(i int) bool {
		for _, s := range w.sets {
			if i >= s.off && i < s.off+len(s.val) {
				return true
			}
		}
		for _, s := range w.sums {
			if i >= s && i < s+2 {
				return true
			}
		}
		return false
	}
	for i := w.from; i < len(in); i++ {
		if in[i] != out[i] && !may(i) {
			return fmt.Errorf("byte %d changed (%#02x -> %#02x), which the translation does not touch", i, in[i], out[i])
		}
	}
	for _, s := range w.sets {
		if !bytes.Equal(out[s.off:s.off+len(s.val)], s.val) {
			return fmt.Errorf("%s is %x, not %x", s.what, out[s.off:s.off+len(s.val)], s.val)
		}
	}
	for _, g := range w.groups {
		if g.udp >= 0 {
			if fzBE16(in[g.udp:]) == 0 {
				if fzBE16(out[g.udp:]) != 0 {
					return fmt.Errorf("%s: a UDP datagram without a checksum got one", g.what)
				}
				continue
			}
			if fzBE16(out[g.udp:]) == 0 {
				return fmt.Errorf("%s: the UDP checksum became 0 (none)", g.what)
			}
		}
		a, b := onesSum(in, g.ranges...), onesSum(out, g.ranges...)
		if a != b && !(a == 0 && b == 0xffff) && !(a == 0xffff && b == 0) {
			return fmt.Errorf("%s checksum does not match the translation (one's complement sum %#04x, was %#04x)", g.what, b, a)
		}
	}
	return nil
}

// onesSum is the folded one's complement sum of the 16-bit words of b's
// ranges (each from an even offset of its own).
func onesSum(b []byte, ranges ...[2]int) uint16 {
	var s uint32
	for _, r := range ranges {
		i := r[0]
		for ; i+1 < r[1]; i += 2 {
			s += uint32(fzBE16(b[i:]))
		}
		if i < r[1] {
			s += uint32(b[i]) << 8
		}
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func fzAddrBytes(a netip.Addr) []byte { b := a.As4(); return b[:] }

func fzPortBytes(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }

// fzNATRewrite: dst, the destination becomes addr:port (to a real); else
// the source (a reply, back as the VIP's).
func fzNATRewrite(p fuzzIPv4, dst bool, a netip.Addr, port uint16) fzRewrite {
	addrOff, portOff, what := p.l3+16, p.l4+2, "destination"
	if !dst {
		addrOff, portOff, what = p.l3+12, p.l4, "source"
	}
	csum, udp := p.l4+16, -1
	if p.proto == 17 {
		csum, udp = p.l4+6, p.l4+6
	}
	w := fzRewrite{
		sets: []fzFieldSet{{what + " address", addrOff, fzAddrBytes(a)}, {what + " port", portOff, fzPortBytes(port)}},
		sums: []int{p.l3 + 10, csum},
		groups: []fzSumGroup{
			{"IPv4 header", [][2]int{{p.l3, p.l4}}, -1},
			{"L4", [][2]int{{p.l3 + 12, p.l3 + 20}, {portOff, portOff + 2}, {csum, csum + 2}}, udp},
		},
	}
	if dst {
		w.from = 12
	}
	return w
}

// fzICMPRewrite: toReal, an ICMP error to a NAT real (outer destination and
// quoted source become the real's); else one from a NAT real (outer
// source and quoted destination become the VIP's).
func fzICMPRewrite(in []byte, p fuzzIPv4, toReal bool, a netip.Addr, port uint16) fzRewrite {
	icmp, inner := p.l4, p.l4+8
	outer, qaddr, qport := p.l3+16, inner+12, inner+20
	if !toReal {
		outer, qaddr, qport = p.l3+12, inner+16, inner+22
	}
	w := fzRewrite{
		sets: []fzFieldSet{{"outer address", outer, fzAddrBytes(a)}, {"quoted address", qaddr, fzAddrBytes(a)}, {"quoted port", qport, fzPortBytes(port)}},
		sums: []int{p.l3 + 10, icmp + 2, inner + 10},
		groups: []fzSumGroup{
			{"IPv4 header", [][2]int{{p.l3, p.l4}}, -1},
			{"ICMP", [][2]int{{icmp, p.end}}, -1},
			{"quoted IPv4 header", [][2]int{{inner, inner + 20}}, -1},
		},
	}
	if toReal {
		w.from = 12
	}
	if in[inner+9] == 17 {
		// A quoted UDP header is whole: its checksum is translated too.
		w.sums = append(w.sums, inner+26)
		w.groups = append(w.groups, fzSumGroup{"quoted UDP", [][2]int{{inner + 12, inner + 24}, {inner + 26, inner + 28}}, inner + 26})
	}
	return w
}

// ---- the rig: the program loaded with fuzzServices ----

type fuzzRig struct {
	ns        *testutil.NS
	x         *Dataplane
	svcs      []fuzzService
	jobs      chan func()
	stats     [xlbXlbStatXLB_STAT_MAX]uint64 // the counters after the last frame
	err       error                          // a table read that failed while the model asked
	runs      int
	sinceWarm int
	tally     fuzzTally
}

// How many frames may pass between two runs of fuzzWarmFrames, which keep
// the flows that seeds quote and reply to established (the fuzzer's own
// frames end them, and a flood of others evicts them).
const fuzzRewarmEvery = 2048

// fuzzMaxFrame bounds a generated frame: BPF_PROG_TEST_RUN takes a page
// less headroom and tailroom at most.
const fuzzMaxFrame = 1600

// fuzzMaxInput bounds FuzzXDPVerdicts' inputs. The program reads no further
// than an ICMP error's quote (about 100 bytes in), and go test -fuzz
// minimizes a new input with a number of runs quadratic in its length: a
// 1500-byte input would take the workers' whole minute.
const fuzzMaxInput = 256

func newFuzzRig(t testing.TB) *fuzzRig {
	t.Helper()
	requireRoot(t)
	ns, dummy := testNS(t)
	r := &fuzzRig{ns: ns, svcs: fuzzServices(), tally: fuzzTally{}}
	res := staticResolver{}
	var svcs []dataplane.Service
	standby := map[netip.Addr]bool{}
	for _, s := range r.svcs {
		ds := dataplane.Service{ServiceKey: s.key, Scheduler: s.sched, Persistence: s.persist}
		for _, rl := range s.reals {
			nh := NextHop{Ifindex: dummy, MAC: rl.mac, SrcMAC: srcMAC}
			if rl.ingress {
				nh.Ifindex = 1
			}
			res[rl.Addr] = nh
			ds.Reals = append(ds.Reals, rl.Real)
		}
		svcs = append(svcs, ds)
		if s.standby {
			standby[s.key.Addr] = true
		}
	}
	r.x = openTest(t, ns, res)
	require.NoError(t, ns.Do(func() error { return r.x.SetStandby(standby) }))
	apply(t, ns, r.x, svcs...)

	// One thread stays in the namespace for the program's runs (a NAT
	// reply's FIB lookup is the namespace's, which has no routes). It is
	// never unlocked: it ends with its goroutine.
	r.jobs = make(chan func())
	entered := make(chan error)
	go func() {
		runtime.LockOSThread()
		entered <- netns.Set(ns.Handle())
		for job := range r.jobs {
			job()
		}
	}()
	require.NoError(t, <-entered)
	t.Cleanup(func() { close(r.jobs) })
	var err error
	r.stats, err = r.readStats()
	require.NoError(t, err)
	return r
}

// readStats reads the per-CPU reason counters in one batch (a frame's
// run costs two syscalls; eleven lookups would cost more than the rest).
func (r *fuzzRig) readStats() ([xlbXlbStatXLB_STAT_MAX]uint64, error) {
	var s [xlbXlbStatXLB_STAT_MAX]uint64
	cpus := ebpf.MustPossibleCPU()
	keys := make([]uint32, len(s))
	vals := make([]uint64, len(s)*cpus)
	var cursor ebpf.MapBatchCursor
	n, err := r.x.objs.Stats.BatchLookup(&cursor, keys, vals, nil)
	if (err != nil && !errors.Is(err, ebpf.ErrKeyNotExist)) || n != len(s) {
		return s, fmt.Errorf("read the stats (%d of %d): %w", n, len(s), err)
	}
	for i, k := range keys {
		for _, v := range vals[i*cpus : (i+1)*cpus] {
			s[k] += v
		}
	}
	return s, nil
}

func (r *fuzzRig) lookup(m flowStore, k, v any) bool {
	err := m.Lookup(k, v)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) && r.err == nil {
		r.err = fmt.Errorf("look up in %v: %w", m, err)
	}
	return err == nil
}

func fzConnKey(k fuzzKey) xlbConnKey {
	return xlbConnKey{Src: ip4(k.src), Dst: ip4(k.dst), Sport: port16(k.sport), Dport: port16(k.dport), Proto: k.proto}
}

// flow implements fzFlowView from the program's flow tables.
func (r *fuzzRig) flow(k fuzzKey) (fuzzFlow, bool) {
	ck := fzConnKey(k)
	var c xlbConn
	var f fuzzFlow
	if !r.lookup(r.x.flows4(), &ck, &c) {
		if !r.lookup(r.x.objs.HalfOpen, &ck, &c) {
			return f, false
		}
		f.half = true
	}
	f.state, f.retired = c.State, c.Retired != 0
	var re xlbReal
	if r.lookup(r.x.objs.Reals, &c.Real, &re) {
		f.real = r.realOf(re)
		f.live = re.Flags&realPresent != 0 && re.Gen == c.Gen
		f.standby = re.Flags&realStandby != 0
	}
	f.expired = fzExpiry(c.LastSeen, c.TimeoutS, monotonicNow())
	return f, true
}

// fzExpiry is conn_expired's answer at now, give or take the distance
// between this clock and the program's (coarse, and read a moment later).
func fzExpiry(seen uint64, timeoutS uint32, now uint64) fzMaybe {
	const margin = int64(200 * time.Millisecond)
	age, limit := int64(now)-int64(seen), int64(timeoutS)*int64(time.Second)
	switch {
	case age+margin < limit:
		return fzNo
	case age-margin > limit:
		return fzYes
	}
	return fzUnsure
}

// reply implements fzFlowView from the NAT reverse tables.
func (r *fuzzRig) reply(k fuzzKey) (fuzzReply, bool) {
	ck := fzConnKey(k)
	var nr xlbNatReply
	if !r.lookup(r.x.objs.NatReplies, &ck, &nr) && !r.lookup(r.x.objs.HalfOpenReplies, &ck, &nr) {
		return fuzzReply{}, false
	}
	return fuzzReply{vip: addrOf(nr.Vip.V4), vport: portOf(nr.Vport)}, true
}

// realOf is the configured real a reals entry holds.
func (r *fuzzRig) realOf(e xlbReal) *fuzzReal {
	for _, s := range r.svcs {
		for i, rl := range s.reals {
			if rl.Addr == addrOf(e.Addr.V4) && rl.Port == portOf(e.Port) && bytes.Equal(rl.mac, e.DstMac[:]) &&
				(rl.Forward == lvs.NAT) == (e.Flags&realNAT != 0) {
				return &s.reals[i]
			}
		}
	}
	return nil
}

func (r *fuzzRig) run(frame []byte) (uint32, []byte, error) {
	opts := &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+64)}
	var ret uint32
	var err error
	done := make(chan struct{})
	r.jobs <- func() {
		ret, err = r.x.objs.XlbXdp.Run(opts)
		close(done)
	}
	<-done
	return ret, opts.DataOut, err
}

// fuzzResult is how a frame went: the model's class it matched, and the
// program's verdict.
type fuzzResult struct {
	class   string
	verdict uint32
}

// check runs frame through the program and judges the outcome by
// expectVerdict.
func (r *fuzzRig) check(frame []byte) (fuzzResult, error) {
	exps := expectVerdict(frame, r, r.svcs...)
	if r.err != nil {
		return fuzzResult{}, r.err
	}
	r.runs++
	r.sinceWarm++
	verdict, out, err := r.run(frame)
	if err != nil {
		if len(frame) < 14 {
			// The kernel takes no XDP frame shorter than Ethernet's header.
			r.tally.add(clsRefused, fuzzNotRun)
			return fuzzResult{class: clsRefused}, nil
		}
		return fuzzResult{}, fmt.Errorf("run a %d-byte frame: %w\n%s", len(frame), err, hex.Dump(frame))
	}
	after, err := r.readStats()
	if err != nil {
		return fuzzResult{}, err
	}
	var d fzStatDelta
	for i := range after {
		d[i] = int64(after[i] - r.stats[i])
	}
	r.stats = after
	var why []string
	for _, e := range exps {
		err := e.check(frame, verdict, out, d)
		if err == nil {
			r.tally.add(e.class, verdict)
			return fuzzResult{class: e.class, verdict: verdict}, nil
		}
		why = append(why, fmt.Sprintf("  %v: got %v", e, err))
	}
	what := fzVerdictName(verdict) + ", which the model does not allow"
	if (verdict == xdpTX || verdict == xdpRedirect) && !slices.ContainsFunc(exps, fzExpectation.forwards) {
		what = "FORWARDED (" + fzVerdictName(verdict) + ") a frame the verdict table says must not be"
	}
	return fuzzResult{verdict: verdict}, fmt.Errorf("%s; it allows:\n%s\nstats moved: %v\nframe (%d bytes):\n%sout:\n%s",
		what, strings.Join(why, "\n"), d, len(frame), hex.Dump(frame), hex.Dump(out))
}

// maybeWarm runs fuzzWarmFrames (each judged as any other frame) when it
// is due.
func (r *fuzzRig) maybeWarm() error {
	if r.runs > 0 && r.sinceWarm < fuzzRewarmEvery {
		return nil
	}
	r.sinceWarm = 0
	for _, f := range fuzzWarmFrames() {
		if _, err := r.check(f); err != nil {
			return fmt.Errorf("warming up: %w", err)
		}
	}
	return nil
}

// fuzzWarmFrames establish, from client's fzKnownPorts, a flow of each
// DR and NAT service, TCP (SYN, ACK) and UDP (two datagrams).
func fuzzWarmFrames() [][]byte {
	var out [][]byte
	for _, p := range fzKnownPorts {
		for _, port := range []uint16{80, 8080, 443} {
			out = append(out, fzTCP(client, vip, p, port, fzSYN).Bytes(), fzTCP(client, vip, p, port, fzACK).Bytes())
		}
		for _, port := range []uint16{53, 54} {
			u := fzUDP(client, vip, p, port, "warm").Bytes()
			out = append(out, u, u)
		}
	}
	return out
}

// fuzzTally counts frames per model class and verdict (the last column:
// frames the kernel would not run).
type fuzzTally map[string]*[6]int

const fuzzNotRun = 5

func (t fuzzTally) add(class string, verdict uint32) {
	if t[class] == nil {
		t[class] = &[6]int{}
	}
	t[class][min(verdict, fuzzNotRun)]++
}

func (t fuzzTally) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "model class\tABORTED\tDROP\tPASS\tTX\tREDIRECT\tnot run\ttotal\t")
	var all [7]int
	row := func(name string, n []int) {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, n[0], n[1], n[2], n[3], n[4], n[5], n[6])
	}
	for _, c := range fuzzClasses {
		n := t[c]
		if n == nil {
			continue
		}
		var r [7]int
		for i, v := range n {
			r[i], r[6] = v, r[6]+v
			all[i] += v
			all[6] += v
		}
		row(c, r[:])
	}
	row("all", all[:])
	w.Flush()
	return b.String()
}

func fzVerdictName(v uint32) string {
	switch v {
	case xdpAborted:
		return "XDP_ABORTED"
	case xdpDrop:
		return "XDP_DROP"
	case xdpPass:
		return "XDP_PASS"
	case xdpTX:
		return "XDP_TX"
	case xdpRedirect:
		return "XDP_REDIRECT"
	}
	return fmt.Sprintf("verdict %d", v)
}

// ---- the corpus generator ----

type fzSeed struct {
	name  string
	frame []byte
}

func fzTCP(src, dst netip.Addr, sport, dport uint16, flags uint8) testutil.Frame {
	return testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: src, Dst: dst, Proto: 6, SrcPort: sport, DstPort: dport, TCPFlags: flags}
}

func fzUDP(src, dst netip.Addr, sport, dport uint16, payload string) testutil.Frame {
	return testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: src, Dst: dst, Proto: 17, SrcPort: sport, DstPort: dport, Payload: []byte(payload)}
}

// fzICMP is an ICMP message (an error, for the types that are) quoting
// quote, with a right checksum.
func fzICMP(src, dst netip.Addr, typ, code uint8, rest uint32, quote []byte) testutil.Frame {
	msg := make([]byte, 8, 8+len(quote))
	msg[0], msg[1] = typ, code
	binary.BigEndian.PutUint32(msg[4:], rest)
	msg = append(msg, quote...)
	binary.BigEndian.PutUint16(msg[2:], testutil.Checksum(msg, 0))
	return testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: src, Dst: dst, Proto: 1, Payload: msg}
}

func fzInsertTag(b []byte, tpid, vid uint16) []byte {
	if len(b) < 12 {
		return b
	}
	tag := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, tpid), vid)
	return slices.Insert(slices.Clone(b), 12, tag...)
}

// fzPad appends zeros up to n bytes, as a NIC delivers a short frame.
func fzPad(b []byte, n int) []byte {
	return append(slices.Clone(b), make([]byte, max(0, n-len(b)))...)
}

// fzSetTotalLength sets an untagged frame's IPv4 total length, leaving the
// header checksum right.
func fzSetTotalLength(b []byte, n int) []byte {
	b = slices.Clone(b)
	binary.BigEndian.PutUint16(b[16:], uint16(n))
	fzFixIPChecksum(b)
	return b
}

func fzFixIPChecksum(b []byte) {
	l3, ok := fuzzL3(b)
	if !ok || len(b) < l3+20 {
		return
	}
	ihl := int(b[l3]&0xf) * 4
	if ihl < 20 || l3+ihl > len(b) {
		ihl = 20
	}
	binary.BigEndian.PutUint16(b[l3+10:], 0)
	binary.BigEndian.PutUint16(b[l3+10:], testutil.Checksum(b[l3:l3+ihl], 0))
}

// fuzzSeeds generates the seed classes: first packets to every service and
// to what is none, every TCP flag combination, NAT replies, VLAN tags, IP
// options, fragments, ICMP errors quoting flows and garbage, bogus IHL,
// total lengths, data offsets and versions, truncations at every length,
// not IPv4, noise.
func fuzzSeeds(rng *rand.Rand) []fzSeed {
	var seeds []fzSeed
	add := func(name string, f []byte) { seeds = append(seeds, fzSeed{name, f}) }
	fresh := func() uint16 { return uint16(1024 + rng.IntN(38000)) } // below fzKnownPorts
	known := func() uint16 { return fzKnownPorts[rng.IntN(len(fzKnownPorts))] }
	stranger := func() netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + rng.IntN(254))}) }
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}

	type dest struct {
		name  string
		dst   netip.Addr
		port  uint16
		proto uint8
	}
	dests := []dest{
		{"dr-tcp", vip, 80, 6}, {"nat-tcp", vip, 8080, 6}, {"quiesced", vip, 9000, 6}, {"persistent", vip, 443, 6},
		{"dr-udp", vip, 53, 17}, {"nat-udp", vip, 54, 17}, {"standby-dr", fzStandbyVIP, 80, 6}, {"standby-nat", fzStandbyVIP, 8080, 6},
		{"vip-other-port-tcp", vip, 81, 6}, {"vip-other-port-udp", vip, 55, 17}, {"standby-other-port", fzStandbyVIP, 53, 17},
		{"elsewhere-tcp", fzElsewhere, 80, 6}, {"elsewhere-udp", fzElsewhere, 53, 17}, {"to-a-nat-real", realAddr(3), 8080, 6},
	}
	first := func(d dest, src netip.Addr, sport uint16) testutil.Frame {
		if d.proto == 6 {
			return fzTCP(src, d.dst, sport, d.port, fzSYN)
		}
		return fzUDP(src, d.dst, sport, d.port, "first")
	}
	for _, d := range dests {
		add("first/"+d.name, first(d, client, fresh()).Bytes())
		add("first/"+d.name+"/stranger", first(d, stranger(), fresh()).Bytes())
		add("first/"+d.name+"/known-port", first(d, client, known()).Bytes())
		add("first/"+d.name+"/padded", fzPad(first(d, client, fresh()).Bytes(), 60))
	}
	for _, port := range []uint16{53, 54} {
		u := fzUDP(client, vip, fresh(), port, "no checksum").Bytes()
		binary.BigEndian.PutUint16(u[14+20+6:], 0)
		add(fmt.Sprintf("udp/%d/no-checksum", port), u)
	}

	// Every TCP flag combination, on a new port and on a known flow.
	for fl := range 256 {
		for _, port := range []uint16{80, 8080} {
			add(fmt.Sprintf("flags/%02x/new/%d", fl, port), fzTCP(client, vip, fresh(), port, uint8(fl)).Bytes())
			add(fmt.Sprintf("flags/%02x/known/%d", fl, port), fzTCP(client, vip, known(), port, uint8(fl)).Bytes())
		}
	}

	// NAT reals' replies, to known flows (each is at one of the two reals)
	// and to none.
	for _, p := range fzKnownPorts {
		for _, fl := range []uint8{fzSYN | fzACK, fzACK, fzFIN | fzACK, fzRST} {
			add("nat-reply/tcp/r3", fzTCP(realAddr(3), client, 8080, p, fl).Bytes())
			add("nat-reply/tcp/r4", fzTCP(realAddr(4), client, 8081, p, fl).Bytes())
		}
		add("nat-reply/udp/r3", fzUDP(realAddr(3), client, 5353, p, "answer").Bytes())
		add("nat-reply/udp/r4", fzUDP(realAddr(4), client, 5353, p, "answer").Bytes())
	}
	add("nat-reply/stray", fzTCP(realAddr(3), client, 8080, fresh(), fzACK).Bytes())
	ttl1 := fzTCP(realAddr(3), client, 8080, known(), fzACK)
	ttl1.TTL = 1
	add("nat-reply/ttl-1", ttl1.Bytes())

	// VLAN tags: 802.1Q, 802.1ad, two (not IPv4 to the program), cut short.
	tagged := fzTCP(client, vip, fresh(), 80, fzSYN)
	tagged.VLAN = 42
	add("vlan/8021q/dr", tagged.Bytes())
	natTagged := fzTCP(client, vip, fresh(), 8080, fzSYN)
	natTagged.VLAN = 7
	add("vlan/8021q/nat", natTagged.Bytes())
	knownTagged := fzTCP(client, vip, known(), 80, fzACK)
	knownTagged.VLAN = 42
	add("vlan/8021q/known", knownTagged.Bytes())
	ad := tagged.Bytes()
	binary.BigEndian.PutUint16(ad[12:], 0x88a8)
	add("vlan/8021ad", ad)
	add("vlan/qinq", fzInsertTag(tagged.Bytes(), 0x88a8, 100))
	add("vlan/cut-short", tagged.Bytes()[:16])

	// IPv4 options: parsed past, whatever they say.
	for _, o := range []struct {
		name string
		opt  []byte
	}{
		{"nop", []byte{1, 1, 1, 1}}, {"router-alert", []byte{0x94, 4, 0, 0}}, {"record-route", []byte{7, 7, 4, 0, 0, 0, 0, 0}},
		{"eol-40", make([]byte, 40)}, {"garbage-40", random(40)}, {"bad-length", []byte{0x83, 0xff, 0, 0}},
	} {
		for _, d := range []dest{dests[0], dests[1], dests[5]} {
			f := first(d, client, fresh())
			f.IPOptions = o.opt
			add("options/"+o.name+"/"+d.name, f.Bytes())
		}
	}

	// Fragments, and what only looks like one.
	for _, fo := range []struct {
		name string
		v    uint16
	}{{"first", 0x2000}, {"middle", 0x2010}, {"last", 0x0010}, {"df-only", 0x4000}, {"reserved-bit", 0x8000}, {"all-bits", 0xffff}} {
		for _, d := range []dest{dests[0], dests[5], dests[6], dests[11]} {
			f := first(d, client, fresh())
			f.FragOff = fo.v
			add("fragment/"+fo.name+"/"+d.name, f.Bytes())
		}
		f := fzICMP(fzRouter, vip, 3, 4, 1300, ipOf(fzTCP(vip, client, 80, known(), fzACK).Bytes())[:28])
		f.FragOff = fo.v
		add("fragment/"+fo.name+"/icmp", f.Bytes())
	}

	// ICMP errors to the VIP, quoting known flows (as the client saw
	// them), no flow, and garbage.
	quotes := []struct {
		name  string
		quote []byte
	}{
		{"dr-tcp", ipOf(fzTCP(vip, client, 80, known(), fzACK).Bytes())},
		{"nat-tcp", ipOf(fzTCP(vip, client, 8080, known(), fzSYN|fzACK).Bytes())},
		{"dr-udp", ipOf(fzUDP(vip, client, 53, known(), "answer").Bytes())},
		{"nat-udp", ipOf(fzUDP(vip, client, 54, known(), "answer").Bytes())},
		{"persistent", ipOf(fzTCP(vip, client, 443, known(), fzACK).Bytes())},
		{"no-flow", ipOf(fzTCP(vip, client, 80, fresh(), fzACK).Bytes())},
		{"standby", ipOf(fzTCP(fzStandbyVIP, client, 80, known(), fzACK).Bytes())},
	}
	types := []struct {
		name       string
		typ, code  uint8
		rest       uint32
		quoteWhole bool
	}{
		{"frag-needed", 3, 4, 1300, false}, {"port-unreachable", 3, 3, 0, true}, {"host-unreachable", 3, 1, 0, false},
		{"time-exceeded", 11, 0, 0, false}, {"source-quench", 4, 0, 0, false}, {"parameter-problem", 12, 0, 0, false},
		{"redirect", 5, 1, 0, false}, {"echo-reply", 0, 0, 0, false}, {"echo", 8, 0, 0, false},
	}
	for _, q := range quotes {
		for _, ty := range types {
			quote := q.quote[:28]
			if ty.quoteWhole {
				quote = q.quote
			}
			add("icmp/to-vip/"+q.name+"/"+ty.name, fzICMP(fzRouter, vip, ty.typ, ty.code, ty.rest, quote).Bytes())
		}
		add("icmp/to-standby/"+q.name, fzICMP(fzRouter, fzStandbyVIP, 3, 4, 1300, q.quote[:28]).Bytes())
		for n := 20; n < 28; n++ {
			add(fmt.Sprintf("icmp/quote-cut/%s/%d", q.name, n), fzICMP(fzRouter, vip, 3, 4, 1300, q.quote[:n]).Bytes())
		}
	}
	withOpts := fzTCP(vip, client, 80, known(), fzACK)
	withOpts.IPOptions = []byte{1, 1, 1, 1}
	add("icmp/quote-with-options", fzICMP(fzRouter, vip, 3, 4, 1300, ipOf(withOpts.Bytes())[:32]).Bytes())
	v6 := slices.Clone(quotes[0].quote[:28])
	v6[0] = 0x65
	add("icmp/quote-version-6", fzICMP(fzRouter, vip, 3, 4, 1300, v6).Bytes())
	fragQuote := fzTCP(vip, client, 80, known(), fzACK)
	fragQuote.FragOff = 0x0010
	add("icmp/quote-of-a-fragment", fzICMP(fzRouter, vip, 3, 4, 1300, ipOf(fragQuote.Bytes())[:28]).Bytes())
	for i := range 16 {
		add("icmp/quote-garbage", fzICMP(fzRouter, vip, []uint8{3, 11}[i%2], uint8(i), 0, random(rng.IntN(64))).Bytes())
	}

	// ICMP errors from NAT reals about a client's packet (as the real got
	// it), and the same from a router.
	for _, p := range fzKnownPorts[:4] {
		for _, q := range []struct {
			name  string
			real  netip.Addr
			quote []byte
		}{
			{"tcp/r3", realAddr(3), ipOf(fzTCP(client, realAddr(3), p, 8080, fzSYN).Bytes())},
			{"tcp/r4", realAddr(4), ipOf(fzTCP(client, realAddr(4), p, 8081, fzSYN).Bytes())},
			{"udp/r3", realAddr(3), ipOf(fzUDP(client, realAddr(3), p, 5353, "query").Bytes())},
			{"udp/r4", realAddr(4), ipOf(fzUDP(client, realAddr(4), p, 5353, "query").Bytes())},
		} {
			add("icmp/from-nat-real/"+q.name, fzICMP(q.real, client, 3, 3, 0, q.quote[:28]).Bytes())
			add("icmp/from-router/"+q.name, fzICMP(fzRouter, client, 11, 0, 0, q.quote[:28]).Bytes())
		}
	}

	// Bogus lengths and versions: IHL, total length, TCP data offset.
	icmpKnown := fzICMP(fzRouter, vip, 3, 4, 1300, quotes[1].quote[:28]).Bytes()
	for _, b := range []struct {
		name  string
		frame []byte
	}{
		{"dr-syn", fzTCP(client, vip, fresh(), 80, fzSYN).Bytes()},
		{"nat-syn", fzTCP(client, vip, fresh(), 8080, fzSYN).Bytes()},
		{"nat-udp", fzUDP(client, vip, fresh(), 54, "query").Bytes()},
		{"known-ack", fzTCP(client, vip, known(), 80, fzACK).Bytes()},
		{"icmp-known", icmpKnown},
	} {
		for ihl := range 16 {
			c := slices.Clone(b.frame)
			c[14] = c[14]&0xf0 | byte(ihl)
			fzFixIPChecksum(c)
			add(fmt.Sprintf("len/%s/ihl-%d", b.name, ihl), c)
		}
		tot := len(b.frame) - 14
		for _, n := range []int{0, 1, 19, 20, 21, 27, 28, 39, tot - 1, tot, tot + 1, tot + 20, 1500, 0xffff} {
			add(fmt.Sprintf("len/%s/total-%d", b.name, n), fzSetTotalLength(b.frame, n))
		}
		for _, v := range []byte{0, 5, 6, 15} {
			c := slices.Clone(b.frame)
			c[14] = v<<4 | c[14]&0xf
			add(fmt.Sprintf("len/%s/version-%d", b.name, v), c)
		}
		if b.frame[14+9] == 6 {
			for doff := range 16 {
				c := slices.Clone(b.frame)
				c[14+20+12] = byte(doff) << 4
				add(fmt.Sprintf("len/%s/doff-%d", b.name, doff), c)
			}
		}
		padded := fzPad(b.frame, len(b.frame)+16)
		add("len/"+b.name+"/padded", padded)
		add("len/"+b.name+"/padded-total-20", fzSetTotalLength(padded, 20))
	}

	// Cut at every length.
	for _, b := range []struct {
		name  string
		frame []byte
	}{
		{"dr-syn", fzTCP(client, vip, fresh(), 80, fzSYN).Bytes()},
		{"nat-syn", fzTCP(client, vip, fresh(), 8080, fzSYN).Bytes()},
		{"nat-udp", fzUDP(client, vip, fresh(), 54, "query").Bytes()},
		{"vlan-syn", tagged.Bytes()},
		{"options-syn", seeds[slices.IndexFunc(seeds, func(s fzSeed) bool { return strings.HasPrefix(s.name, "options/router-alert/") })].frame},
		{"icmp-known", icmpKnown},
		{"nat-reply", fzTCP(realAddr(3), client, 8080, known(), fzACK).Bytes()},
	} {
		for n := range len(b.frame) {
			add(fmt.Sprintf("cut/%s/%d", b.name, n), b.frame[:n])
		}
	}

	// Not IPv4.
	arp := append(append(append([]byte{}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), clientMC...), 0x08, 0x06)
	add("not-ipv4/arp", append(arp, make([]byte, 28)...))
	for _, et := range []uint16{0x86dd, 0x0000, 0xffff, 0x8847} {
		c := fzTCP(client, vip, fresh(), 80, fzSYN).Bytes()
		binary.BigEndian.PutUint16(c[12:], et)
		add(fmt.Sprintf("not-ipv4/ethertype-%04x", et), c)
	}
	add("not-ipv4/ethernet-only", fzTCP(client, vip, fresh(), 80, fzSYN).Bytes()[:14])

	// Noise, and noise behind a plausible IPv4 header.
	for range 32 {
		add("noise/any", random(rng.IntN(200)))
		c := append(fzTCP(client, vip, fresh(), 80, fzSYN).Bytes()[:14+20], random(rng.IntN(80))...)
		c[14+9] = []byte{1, 6, 17}[rng.IntN(3)]
		add("noise/after-ipv4", fzSetTotalLength(c, len(c)-14))
	}
	return seeds
}

// ---- mutations ----

// fuzzMutate makes a mutant of b: one to three of fuzzMutators, which
// know where the fields are.
func fuzzMutate(rng *rand.Rand, b []byte, seeds []fzSeed) []byte {
	b = slices.Clone(b)
	for n := 1 + rng.IntN(3); n > 0; n-- {
		b = fuzzMutators[rng.IntN(len(fuzzMutators))](rng, b, seeds)
	}
	if len(b) > fuzzMaxFrame {
		b = b[:fuzzMaxFrame]
	}
	return b
}

var fuzzBytes = []byte{0, 1, 2, 4, 5, 6, 15, 17, 0x40, 0x45, 0x46, 0x4f, 0x7f, 0x80, 0xfe, 0xff}

var fuzzWords = []uint16{0, 1, 8, 19, 20, 21, 28, 40, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff}

func fzPick[T any](rng *rand.Rand, s ...T) T { return s[rng.IntN(len(s))] }

var fuzzMutators = []func(rng *rand.Rand, b []byte, seeds []fzSeed) []byte{
	// A bit.
	func(rng *rand.Rand, b []byte, _ []fzSeed) []byte {
		if len(b) > 0 {
			b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
		}
		return b
	},
	// A byte.
	func(rng *rand.Rand, b []byte, _ []fzSeed) []byte {
		if len(b) > 0 {
			b[rng.IntN(len(b))] = fzPick(rng, fzPick(rng, fuzzBytes...), byte(rng.Uint32()))
		}
		return b
	},
	// A 16-bit word.
	func(rng *rand.Rand, b []byte, _ []fzSeed) []byte {
		if len(b) > 1 {
			binary.BigEndian.PutUint16(b[rng.IntN(len(b)-1):], fzPick(rng, fzPick(rng, fuzzWords...), uint16(rng.Uint32()), uint16(len(b)-14)))
		}
		return b
	},
	// Cut (rarely shorter than Ethernet's header, which the kernel does not run).
	func(rng *rand.Rand, b []byte, _ []fzSeed) []byte {
		if len(b) > 14 && rng.IntN(8) > 0 {
			return b[:14+rng.IntN(len(b)-13)]
		}
		return b[:rng.IntN(len(b)+1)]
	},
	// Grow.
	func(rng *rand.Rand, b []byte, _ []fzSeed) []byte {
		tail := make([]byte, 1+rng.IntN(32))
		if rng.IntN(2) == 0 {
			for i := range tail {
				tail[i] = byte(rng.Uint32())
			}
		}
		return append(b, tail...)
	},
	// A byte in or out.
	func(rng *rand.Rand, b []byte, _ []fzSeed) []byte {
		i := rng.IntN(len(b) + 1)
		if i < len(b) && rng.IntN(2) == 0 {
			return slices.Delete(b, i, i+1)
		}
		return slices.Insert(b, i, byte(rng.Uint32()))
	},
	// An IPv4 header field.
	func(rng *rand.Rand, b []byte, _ []fzSeed) []byte {
		l3, ok := fuzzL3(b)
		if !ok || len(b) < l3+20 {
			return b
		}
		ip := b[l3:]
		ihl := int(ip[0]&0xf) * 4
		addr := func(off int, as ...netip.Addr) {
			a := fzPick(rng, as...).As4()
			if rng.IntN(8) == 0 {
				binary.BigEndian.PutUint32(a[:], rng.Uint32())
			}
			copy(ip[off:], a[:])
		}
		switch rng.IntN(9) {
		case 0:
			ip[0] = ip[0]&0xf0 | byte(rng.IntN(16))
		case 1:
			ip[0] = byte(rng.IntN(16))<<4 | ip[0]&0xf
		case 2:
			binary.BigEndian.PutUint16(ip[2:], uint16(fzPick(rng, 0, ihl-1, ihl, ihl+7, ihl+19, len(ip)-1, len(ip), len(ip)+1, rng.IntN(0x10000))))
		case 3:
			binary.BigEndian.PutUint16(ip[6:], fzPick(rng, 0, 0x2000, 0x0001, 0x4000, 0x8000, 0x3fff, uint16(rng.Uint32())))
		case 4:
			ip[9] = fzPick[byte](rng, 1, 6, 17, 0, 4, 41, 47, 132, 255)
		case 5:
			ip[8] = fzPick[byte](rng, 0, 1, 255)
		case 6:
			addr(12, client, realAddr(3), realAddr(4), vip, fzRouter, netip.MustParseAddr("198.51.100.9"))
		case 7:
			addr(16, vip, fzStandbyVIP, fzElsewhere, client, realAddr(1), realAddr(3))
		case 8:
			binary.BigEndian.PutUint16(ip[10:], uint16(rng.Uint32()))
		}
		if rng.IntN(2) == 0 {
			fzFixIPChecksum(b)
		}
		return b
	},
	// An L4 header field (at IHL's word, whatever the protocol).
	func(rng *rand.Rand, b []byte, _ []fzSeed) []byte {
		l3, ok := fuzzL3(b)
		if !ok || len(b) < l3+20 {
			return b
		}
		l4 := l3 + int(b[l3]&0xf)*4
		if len(b) < l4+20 {
			return b
		}
		port := func() uint16 {
			return fzPick(rng, 80, 8080, 53, 54, 9000, 443, 81, 0, 5353, 8081, fzPick(rng, fzKnownPorts...), uint16(rng.Uint32()))
		}
		switch rng.IntN(6) {
		case 0:
			binary.BigEndian.PutUint16(b[l4:], port())
		case 1:
			binary.BigEndian.PutUint16(b[l4+2:], port())
		case 2:
			b[l4+13] = byte(rng.Uint32())
		case 3:
			b[l4+12] = byte(rng.IntN(16)) << 4
		case 4:
			binary.BigEndian.PutUint16(b[l4+fzPick(rng, 6, 16):], fzPick(rng, 0, 0xffff, uint16(rng.Uint32())))
		case 5:
			b[l4], b[l4+1] = fzPick[byte](rng, 3, 4, 5, 11, 12, 0, 8), byte(rng.IntN(16))
		}
		return b
	},
	// A VLAN tag in or out.
	func(rng *rand.Rand, b []byte, _ []fzSeed) []byte {
		if len(b) < 14 {
			return b
		}
		if et := fzBE16(b[12:]); (et == 0x8100 || et == 0x88a8) && len(b) >= 18 && rng.IntN(2) == 0 {
			return slices.Delete(b, 12, 16)
		}
		return fzInsertTag(b, fzPick[uint16](rng, 0x8100, 0x88a8), uint16(rng.IntN(4096)))
	},
	// A field of an ICMP error's quote.
	func(rng *rand.Rand, b []byte, _ []fzSeed) []byte {
		l3, ok := fuzzL3(b)
		if !ok || len(b) < l3+20 {
			return b
		}
		inner := l3 + int(b[l3]&0xf)*4 + 8
		if len(b) < inner+28 {
			return b
		}
		in := b[inner:]
		switch rng.IntN(5) {
		case 0:
			in[0] = in[0]&0xf0 | byte(rng.IntN(16))
		case 1:
			in[9] = fzPick[byte](rng, 6, 17, 1, 0)
		case 2:
			binary.BigEndian.PutUint16(in[20+2*rng.IntN(2):], fzPick(rng, 80, 8080, 53, 54, 443, 5353, 8081, fzPick(rng, fzKnownPorts...), uint16(rng.Uint32())))
		case 3:
			a := fzPick(rng, vip, client, realAddr(3), realAddr(4), fzStandbyVIP).As4()
			copy(in[12+4*rng.IntN(2):], a[:])
		case 4:
			in[0] = byte(rng.IntN(16))<<4 | in[0]&0xf
		}
		return b
	},
	// The head of this frame, the tail of another.
	func(rng *rand.Rand, b []byte, seeds []fzSeed) []byte {
		o := seeds[rng.IntN(len(seeds))].frame
		i, j := rng.IntN(len(b)+1), rng.IntN(len(o)+1)
		return append(b[:i:i], o[j:]...)
	},
}

// ---- the tests ----

// fuzzCorpusBudget bounds TestXDPFuzzCorpus on a slow machine: past it,
// the test stops generating and says how far it got.
const fuzzCorpusBudget = 50 * time.Second

// TestXDPFuzzCorpus runs every seed class and mutants of each (from a fixed
// PRNG seed, so the same frames every run) through the program, and logs
// the verdicts per model class.
func TestXDPFuzzCorpus(t *testing.T) {
	rig := newFuzzRig(t)
	start := time.Now()
	rng := rand.New(rand.NewPCG(0x786c62, 0x66757a7a))
	seeds := fuzzSeeds(rng)
	const target = 240_000
	mutants := max(1, (target-len(seeds))/len(seeds))
	var failures []error
	try := func(frame []byte) {
		err := rig.maybeWarm()
		if err == nil {
			_, err = rig.check(frame)
		}
		if err != nil {
			failures = append(failures, err)
		}
	}
	for i, s := range seeds {
		try(s.frame)
		n := mutants
		if len(s.frame) < 14 {
			n = 2 // its mutants are mostly as short, which the kernel does not run
		}
		for range n {
			try(fuzzMutate(rng, s.frame, seeds))
		}
		if len(failures) >= 20 {
			break
		}
		if time.Since(start) > fuzzCorpusBudget {
			t.Logf("stopped after %d of %d seeds: past the %s budget", i+1, len(seeds), fuzzCorpusBudget)
			break
		}
	}
	t.Logf("%d frames (%d seeds, up to %d mutants of each, and warm-ups) in %s", rig.runs, len(seeds), mutants,
		time.Since(start).Round(time.Millisecond))
	t.Logf("verdicts per model class:\n%s", rig.tally)
	for i, err := range failures[:min(len(failures), 5)] {
		t.Errorf("failure %d: %v", i+1, err)
	}
	if len(failures) > 5 {
		t.Errorf("%d failures (the first 5 above)", len(failures))
	}
}

// FuzzXDPVerdicts: any frame, judged by expectVerdict. Seeds: a sample of
// fuzzSeeds' classes, and testdata/fuzz/FuzzXDPVerdicts, each named for
// what it covers. The rig's flow tables carry over from one input to the
// next (fuzzWarmFrames runs again every fuzzRewarmEvery): a failure says
// what the model read of them.
func FuzzXDPVerdicts(f *testing.F) {
	classes := map[string][]fzSeed{}
	var order []string
	for _, s := range fuzzSeeds(rand.New(rand.NewPCG(0x786c62, 0x66757a7a))) {
		class, _, _ := strings.Cut(s.name, "/")
		if classes[class] == nil {
			order = append(order, class)
		}
		classes[class] = append(classes[class], s)
	}
	for _, c := range order {
		// 16 of each class, spread over it.
		for i, s := range classes[c] {
			if n := len(classes[c]); n <= 16 || i%(n/16) == 0 {
				f.Add(s.frame)
			}
		}
	}
	rig := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) > fuzzMaxInput {
			t.Skip("longer than the program reads")
		}
		if err := rig.maybeWarm(); err != nil {
			t.Fatal(err)
		}
		if _, err := rig.check(frame); err != nil {
			t.Fatal(err)
		}
	})
}

// TestXDPFuzzFindings holds what the fuzzer found the program doing against
// the verdict table, minimized: before bpf/parse.h read the IPv4 total
// length, each of these was forwarded.
func TestXDPFuzzFindings(t *testing.T) {
	rig := newFuzzRig(t)
	require.NoError(t, rig.maybeWarm()) // the flows an ICMP error may be about
	for _, c := range []struct {
		name  string
		frame []byte
	}{
		{"a SYN to a DR VIP whose IPv4 total length (0) is below its header's",
			fzSetTotalLength(fzTCP(client, vip, 1234, 80, fzSYN).Bytes(), 0)},
		{"a SYN to a DR VIP whose IPv4 total length (41) runs past the frame's 40",
			fzSetTotalLength(fzTCP(client, vip, 1235, 80, fzSYN).Bytes(), 41)},
		{"UDP to a NAT VIP whose total length (20) ends with its IPv4 header: ports NAT-rewritten in the link's padding",
			fzSetTotalLength(fzPad(fzUDP(client, vip, 1236, 54, "").Bytes(), 60), 20)},
		{"an ICMP error about a flow whose quoted ports lie past its total length (50), in the link's padding",
			fzSetTotalLength(fzICMP(fzRouter, vip, 3, 4, 1300, ipOf(fzTCP(vip, client, 80, fzKnownPorts[0], fzACK).Bytes())[:28]).Bytes(), 50)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := rig.check(c.frame); err != nil {
				t.Error(err)
			}
		})
	}
}
