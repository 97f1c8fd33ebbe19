package sched

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// Table is how the XDP data plane computes a scheduler's choice: what the
// control plane fills in ahead of time, and what the program's picker
// (bpf/sched.h) does with it for each new flow.
type Table int

const (
	// TableNone: only the kernel's IPVS computes it (the XDP data plane
	// refuses the scheduler, naming it).
	TableNone Table = iota
	// TableSequence: the picks the scheduler makes from its current
	// state (a prefix, then a cycle); the program takes the next one.
	// The scheduler's state is a Sequencer (Scheduler.Start).
	TableSequence
	// TableBuckets: hash buckets naming dests (Scheduler.Buckets); the
	// program hashes the packet and reads one.
	TableBuckets
	// TableScan: the dest list in order; the program scans it reading
	// each real's live connection counts.
	TableScan
)

// Geometry is how the kernel's IPVS was built, where a table's size
// depends on it: CONFIG_IP_VS_MH_TAB_INDEX (0: the default, MHTabIndex).
type Geometry struct {
	MHTabIndex int
}

// Flag is a service flag as a scheduler names it (ipvsadm -b, keepalived's
// sh-port and the like).
type Flag struct {
	Bit  lvs.SvcFlags
	Name string
}

// Scheduler is one IPVS scheduler: everything xlb knows of it, in one
// place. Every other list of scheduler names in xlb is derived from
// Schedulers.
type Scheduler struct {
	// Name is IPVS's (ipvsadm -s, keepalived lvs_sched).
	Name string
	// Flags are the scheduler flags it reads, with its names for them;
	// ipvsadm shows the others as flag-1..flag-3.
	Flags []Flag
	// Table is how the XDP data plane computes it.
	Table Table
	// Start is init_svc for a service whose list is ds (nil: a service
	// made empty, to be filled): the state its picks start from.
	// TableSequence only.
	Start func(ds []Dest) Sequencer
	// Resume rebuilds the state marked (a, b) by Sequencer.Mark, for a
	// control plane that restarted. TableSequence only.
	Resume func(ds []Dest, a, b int32) Sequencer
	// Buckets fills the hash buckets from ds with configured weights:
	// a dest index per bucket, -1 for none. TableBuckets only.
	Buckets func(ds []Dest, g Geometry) []int
	// New is the reference picker for a service whose list is ds and
	// whose flags are flags: what IPVS picks, for tests to compare a data
	// plane with. Nil where xlb has no model of the scheduler.
	New func(ds []Dest, flags lvs.SvcFlags) Picker
}

// Schedulers are the kernel's IPVS schedulers (net/netfilter/ipvs/ip_vs_*.c).
var Schedulers = []Scheduler{
	{Name: "rr", Table: TableSequence,
		Start:  func([]Dest) Sequencer { return rrSeq{Cursor: -1} },
		Resume: func(_ []Dest, a, _ int32) Sequencer { return rrSeq{Cursor: int(a)} },
		New:    sequencePicker(func([]Dest) Sequencer { return rrSeq{Cursor: -1} })},
	{Name: "wrr", Table: TableSequence,
		Start: func(ds []Dest) Sequencer { return wrrSeq(NewWRR(ds)) },
		Resume: func(ds []Dest, a, b int32) Sequencer {
			w := NewWRR(ds)
			w.Cursor, w.CW = int(a), b
			return wrrSeq(w)
		},
		New: sequencePicker(func(ds []Dest) Sequencer { return wrrSeq(NewWRR(ds)) })},
	{Name: "lc", Table: TableScan, New: scanPicker(LC)},
	{Name: "wlc", Table: TableScan, New: scanPicker(WLC)},
	{Name: "lblc"},
	{Name: "lblcr"},
	{Name: "dh", Table: TableBuckets,
		Buckets: func(ds []Dest, _ Geometry) []int { t := DHTable(ds); return t[:] },
		New: func([]Dest, lvs.SvcFlags) Picker {
			return funcPicker(func(ds []Dest, c Conn) int { t := DHTable(ds); return DHPick(&t, ds, c.Dst) })
		}},
	{Name: "sh", Table: TableBuckets,
		Flags:   []Flag{{lvs.Sched1, "sh-fallback"}, {lvs.Sched2, "sh-port"}},
		Buckets: func(ds []Dest, _ Geometry) []int { t := SHTable(ds); return t[:] },
		New: func(_ []Dest, flags lvs.SvcFlags) Picker {
			return funcPicker(func(ds []Dest, c Conn) int {
				port := uint16(0)
				if flags&lvs.Sched2 != 0 {
					port = c.SPort
				}
				t := SHTable(ds)
				return SHPick(&t, ds, SHKey(c.Src, port), flags&lvs.Sched1 != 0)
			})
		}},
	{Name: "sed", Table: TableScan, New: scanPicker(SED)},
	{Name: "nq", Table: TableScan, New: scanPicker(NQ)},
	{Name: "fo", Table: TableScan, New: scanPicker(FO)},
	{Name: "ovf", Table: TableScan, New: scanPicker(OVF)},
	{Name: "mh", Table: TableBuckets,
		Flags:   []Flag{{lvs.Sched1, "mh-fallback"}, {lvs.Sched2, "mh-port"}},
		Buckets: func(ds []Dest, g Geometry) []int { return MHTableOf(ds, g.MHTabIndex) },
		New: func(_ []Dest, flags lvs.SvcFlags) Picker {
			return funcPicker(func(ds []Dest, c Conn) int {
				port := uint16(0)
				if flags&lvs.Sched2 != 0 {
					port = c.SPort
				}
				return MHPick(MHTable(ds), ds, AddrFold(c.Src), port, flags&lvs.Sched1 != 0)
			})
		}},
	// twos draws at random: its reference draws too (Twos is exact given
	// the draws).
	{Name: "twos", Table: TableScan, New: func([]Dest, lvs.SvcFlags) Picker {
		return funcPicker(func(ds []Dest, _ Conn) int {
			total := TwosTotal(ds)
			if total == 0 {
				return -1
			}
			return Twos(ds, rand.Int64N(total), rand.Int64N(total))
		})
	}},
}

// Lookup finds a scheduler by name.
func Lookup(name string) (*Scheduler, bool) {
	i := slices.IndexFunc(Schedulers, func(s Scheduler) bool { return s.Name == name })
	if i < 0 {
		return nil, false
	}
	return &Schedulers[i], true
}

// Names lists the schedulers for which keep says yes (nil: all), in
// registry order.
func Names(keep func(*Scheduler) bool) []string {
	var out []string
	for i := range Schedulers {
		if keep == nil || keep(&Schedulers[i]) {
			out = append(out, Schedulers[i].Name)
		}
	}
	return out
}

// InXDP says whether the XDP data plane computes s.
func InXDP(s *Scheduler) bool { return s.Table != TableNone }

// Modelled says whether xlb has a reference picker for s (Scheduler.New).
func Modelled(s *Scheduler) bool { return s.New != nil }

// FlagBits are the flags s reads.
func (s *Scheduler) FlagBits() lvs.SvcFlags {
	var b lvs.SvcFlags
	for _, f := range s.Flags {
		b |= f.Bit
	}
	return b
}

// FlagNames names the scheduler flags set in f as ipvsadm's listing does
// (print_sched_flags): the scheduler's own names, or flag-1..flag-3 for a
// scheduler (or a name) that has none.
func FlagNames(scheduler string, f lvs.SvcFlags) []string {
	var out []string
	if s, ok := Lookup(scheduler); ok && len(s.Flags) > 0 {
		for _, fl := range s.Flags {
			if f&fl.Bit != 0 {
				out = append(out, fl.Name)
			}
		}
		return out
	}
	for i, bit := range []lvs.SvcFlags{lvs.Sched1, lvs.Sched2, lvs.Sched3} {
		if f&bit != 0 {
			out = append(out, "flag-"+string(rune('1'+i)))
		}
	}
	return out
}

// FlagByName finds a scheduler flag by the name some scheduler gives it
// (sh-port), or by its generic name (flag-2); owner is the scheduler that
// names it, "" for a generic name.
func FlagByName(name string) (bit lvs.SvcFlags, owner string, ok bool) {
	for _, s := range Schedulers {
		for _, f := range s.Flags {
			if f.Name == name {
				return f.Bit, s.Name, true
			}
		}
	}
	if n, found := strings.CutPrefix(name, "flag-"); found && len(n) == 1 && n[0] >= '1' && n[0] <= '3' {
		return lvs.Sched1 << (n[0] - '1'), "", true
	}
	return 0, "", false
}

// Conn is what a scheduler may read of a new connection.
type Conn struct {
	Src, Dst netip.Addr
	SPort    uint16 // host order
}

// Picker is a reference scheduler for one service: what IPVS picks for a
// new connection given the dest list, and the hooks IPVS runs when the list
// changes (add_dest, del_dest, upd_dest), each with the list as it is after
// the change.
type Picker interface {
	Pick(ds []Dest, c Conn) int
	Inserted(i int, ds []Dest)
	Deleted(i int, ds []Dest)
	Updated(ds []Dest)
}

// funcPicker is a scheduler that keeps no state between picks.
type funcPicker func(ds []Dest, c Conn) int

func (f funcPicker) Pick(ds []Dest, c Conn) int { return f(ds, c) }
func (funcPicker) Inserted(int, []Dest)         {}
func (funcPicker) Deleted(int, []Dest)          {}
func (funcPicker) Updated([]Dest)               {}

func scanPicker(pick func([]Dest) int) func([]Dest, lvs.SvcFlags) Picker {
	return func([]Dest, lvs.SvcFlags) Picker {
		return funcPicker(func(ds []Dest, _ Conn) int { return pick(ds) })
	}
}

// seqPicker is a Sequencer run one pick at a time.
type seqPicker struct{ s Sequencer }

func sequencePicker(start func([]Dest) Sequencer) func([]Dest, lvs.SvcFlags) Picker {
	return func(ds []Dest, _ lvs.SvcFlags) Picker { return &seqPicker{start(ds)} }
}

func (p *seqPicker) Pick(ds []Dest, _ Conn) int {
	var i int
	p.s, i = p.s.Next(ds)
	return i
}
func (p *seqPicker) Inserted(i int, ds []Dest) { p.s = p.s.Inserted(i, ds) }
func (p *seqPicker) Deleted(i int, ds []Dest)  { p.s = p.s.Deleted(i, ds) }
func (p *seqPicker) Updated(ds []Dest)         { p.s = p.s.Updated(ds) }
