package xdp

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"path/filepath"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The IPv4 flow table's array (bpf/flowtab.h): a flow's key and entry in
// one 64-byte slot, found with one memory access; what finds no slot in
// its window lives in the LRU hash (conns), counted at its home slot. The
// control plane maps the array and reads and writes its slots with the
// same atomics as the program: a syscall's copy of a slot could land on
// one that a CPU is claiming.

const (
	ftFree      = 0
	ftBusy      = 1
	ftLive      = 2
	ftGone      = 3
	ftState     = 3
	ftSeen      = 4
	ftOverShift = 32
	ftWindow    = 16
	ftSlotSize  = 64
)

// ftSlotsFor is the array's slots for a table of flows IPv4 flows: twice
// as many, a power of two (half load: a window of 16 then fails to place
// 0.03% of flows, go run ./tools/probesim).
func ftSlotsFor(flows uint32) uint32 {
	return 1 << bits.Len32(2*flows-1)
}

// ftOverflowFor is the LRU's entries behind the array of a table of flows
// IPv4 flows: an eighth of them (the array places all but 0.03% of flows
// at half load, 1.3% at three quarters, 4.6% at 0.9), at least 1024.
func ftOverflowFor(flows uint32) uint32 {
	return max(flows/8, 1024)
}

// flowTable is the array as the control plane sees it.
type flowTable struct {
	mem          []byte
	mask         uint32
	shift        uint
	salt0, salt1 uint64
}

// configureFlowTable sizes the array for flows and keys its hash: with
// the key a pinned array of the same size was made with (its flows must
// be found again), else a new one (fresh).
func configureFlowTable(spec *ebpf.CollectionSpec, pinDir string, flows uint32) (meta xlbFtMeta, fresh bool, err error) {
	meta = xlbFtMeta{Slots: ftSlotsFor(flows)}
	spec.Maps[xlbMapFlowtab].MaxEntries = meta.Slots
	spec.Maps[xlbMapConns].MaxEntries = ftOverflowFor(flows)
	// An LRU pinned by an xlb before the array held every flow: taken
	// over as it is (its flows stay in it, adoptLRUFlows).
	if m, err := ebpf.LoadPinnedMap(filepath.Join(pinDir, xlbMapConns), nil); err == nil {
		spec.Maps[xlbMapConns].MaxEntries = m.MaxEntries()
		m.Close()
	}
	if m, err := ebpf.LoadPinnedMap(filepath.Join(pinDir, xlbMapFlowtabMeta), nil); err == nil {
		var old xlbFtMeta
		lerr := m.Lookup(uint32(0), &old)
		m.Close()
		if lerr == nil && old.Slots == meta.Slots && old.Salt0|old.Salt1 != 0 {
			meta = old
		}
	}
	if meta.Salt0|meta.Salt1 == 0 {
		fresh = true
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return meta, fresh, err
		}
		meta.Salt0, meta.Salt1 = binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])|1
	}
	for name, v := range map[string]any{
		"ft_mask": meta.Slots - 1, "ft_shift": uint32(64 - bits.Len32(meta.Slots-1)),
		"ft_salt0": meta.Salt0, "ft_salt1": meta.Salt1,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return meta, fresh, fmt.Errorf("configure the flow table: %s: %w", name, err)
		}
	}
	return meta, fresh, nil
}

// adoptLRUFlows counts at their homes the flows a pinned LRU holds when
// the array is new (an xlb before the array kept every IPv4 flow there,
// and nothing counted them): a lookup then finds them where they are. They
// are not moved: the program being taken over, which knows no array,
// serves them until the new one is attached. A director taking over from
// such a one keeps its connections.
func (x *Dataplane) adoptLRUFlows() error {
	n := 0
	keys, vals := make([]xlbConnKey, 4096), make([]xlbConn, 4096)
	err := readBatches(x.objs.Conns, keys, vals, func(i int) {
		x.ft.overflow(keys[i], true)
		n++
	})
	if err != nil {
		return fmt.Errorf("adopt the LRU's flows: %w", err)
	}
	if n > 0 {
		x.log.Info("flows of the LRU flow table counted at their homes in the new array", "flows", n)
	}
	return nil
}

// openFlowTable maps the loaded array and records its key beside it.
func openFlowTable(arr, metaMap *ebpf.Map, meta xlbFtMeta) (*flowTable, error) {
	if arr.MaxEntries() != meta.Slots || arr.ValueSize() != ftSlotSize {
		return nil, fmt.Errorf("flow table: %d slots of %d bytes, want %d of %d", arr.MaxEntries(), arr.ValueSize(), meta.Slots, ftSlotSize)
	}
	if err := metaMap.Update(uint32(0), &meta, ebpf.UpdateAny); err != nil {
		return nil, fmt.Errorf("flow table: record its key: %w", err)
	}
	mem, err := unix.Mmap(arr.FD(), 0, int(meta.Slots)*ftSlotSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("flow table: map it: %w", err)
	}
	return &flowTable{mem: mem, mask: meta.Slots - 1, shift: uint(64 - bits.Len32(meta.Slots-1)), salt0: meta.Salt0, salt1: meta.Salt1}, nil
}

func (t *flowTable) close() error {
	if t == nil || t.mem == nil {
		return nil
	}
	err := unix.Munmap(t.mem)
	t.mem = nil
	return err
}

// home is bpf/flowtab.h's ft_home.
func (t *flowTable) home(k0, k1 uint64) uint32 {
	h := (k0 ^ t.salt0) * 0x9E3779B97F4A7C15
	h ^= h >> 29
	h = (h ^ k1 ^ t.salt1) * 0xBF58476D1CE4E5B9
	h ^= h >> 32
	h *= 0x94D049BB133111EB
	return uint32(h >> (t.shift & 63))
}

func (t *flowTable) slot(i uint32) *xlbFtSlot {
	return (*xlbFtSlot)(unsafe.Pointer(&t.mem[int(i&t.mask)*ftSlotSize]))
}

func (s *xlbFtSlot) tag() *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&s.Tag))
}

// ftWords is a key as the program stores it (conn_key_of): two words.
func ftWords(k xlbConnKey) (uint64, uint64) {
	b := (*[16]byte)(unsafe.Pointer(&k))
	return binary.NativeEndian.Uint64(b[:8]), binary.NativeEndian.Uint64(b[8:])
}

func ftKey(k0, k1 uint64) xlbConnKey {
	var k xlbConnKey
	b := (*[16]byte)(unsafe.Pointer(&k))
	binary.NativeEndian.PutUint64(b[:8], k0)
	binary.NativeEndian.PutUint64(b[8:], k1)
	return k
}

// find is ft_find_slot: the slot holding k, or nil; over: whether k's
// home counts flows in the LRU.
func (t *flowTable) find(k xlbConnKey) (s *xlbFtSlot, over bool) {
	k0, k1 := ftWords(k)
	i := t.home(k0, k1)
	for p := range uint32(ftWindow) {
		s := t.slot(i + p)
		tag := s.tag().Load()
		if p == 0 {
			over = tag>>ftOverShift != 0
		}
		switch tag & ftState {
		case ftFree:
			return nil, over
		case ftLive:
			if s.K0 == k0 && s.K1 == k1 {
				return s, over
			}
		}
	}
	return nil, over
}

// free ends a LIVE slot's flow: true if this call did.
func (s *xlbFtSlot) free() bool {
	for range 4 {
		old := s.tag().Load()
		if old&ftState != ftLive {
			return false
		}
		if s.tag().CompareAndSwap(old, old&^(ftState|ftSeen)|ftGone) {
			return true
		}
	}
	return false
}

// overflow is ft_overflow: one more (or one less) of k's home's flows in
// the LRU, never below zero.
func (t *flowTable) overflow(k xlbConnKey, more bool) {
	k0, k1 := ftWords(k)
	tag := t.slot(t.home(k0, k1)).tag()
	if more {
		tag.Add(1 << ftOverShift)
		return
	}
	for range 4 {
		old := tag.Load()
		if old>>ftOverShift == 0 || tag.CompareAndSwap(old, old-1<<ftOverShift) {
			return
		}
	}
}

// errNoRoom: no slot in the flow's window (the caller goes to the LRU).
var errNoRoom = errors.New("no slot in the flow's window")

// place writes a flow that is in neither the array nor the LRU into its
// window's first GONE or FREE slot, as ft_insert does.
func (t *flowTable) place(k xlbConnKey, v *xlbConn) error {
	k0, k1 := ftWords(k)
	i := t.home(k0, k1)
	for p := range uint32(ftWindow) {
		s := t.slot(i + p)
		for range 4 { // a tag moved by another writer is read again
			old := s.tag().Load()
			st := old & ftState
			if st != ftFree && st != ftGone {
				break
			}
			if !s.tag().CompareAndSwap(old, old&^(ftState|ftSeen)|ftBusy) {
				continue
			}
			s.C = *v
			s.K0, s.K1 = k0, k1
			for {
				cur := s.tag().Load()
				if s.tag().CompareAndSwap(cur, cur^(ftBusy^ftLive)) {
					return nil
				}
			}
		}
		if s.tag().Load()&ftState == ftFree {
			return errNoRoom // never past a FREE slot
		}
	}
	return errNoRoom
}

// each calls f with every LIVE slot's flow, in slot order.
func (t *flowTable) each(f func(k xlbConnKey, v *xlbConn)) {
	for i := range t.mask + 1 {
		s := t.slot(i)
		if s.tag().Load()&ftState != ftLive {
			continue
		}
		f(ftKey(s.K0, s.K1), &s.C)
	}
}

// flows4 is the IPv4 flow table as the control plane writes it: the
// array, and the LRU for what the array could not place; a map's Update
// and Lookup, for installFlow.
type flows4 struct {
	ft  *flowTable
	lru *ebpf.Map
}

func (f flows4) Lookup(key, out any) error {
	k, v := key.(*xlbConnKey), out.(*xlbConn)
	s, over := f.ft.find(*k)
	if s != nil {
		*v = s.C
		return nil
	}
	if !over {
		return ebpf.ErrKeyNotExist
	}
	return f.lru.Lookup(k, v)
}

func (f flows4) Update(key, value any, flags ebpf.MapUpdateFlags) error {
	k, v := key.(*xlbConnKey), value.(*xlbConn)
	s, over := f.ft.find(*k)
	if s != nil {
		if flags == ebpf.UpdateNoExist {
			return ebpf.ErrKeyExist
		}
		s.C = *v
		return nil
	}
	if over {
		var old xlbConn
		if f.lru.Lookup(k, &old) == nil {
			return f.lru.Update(k, v, flags)
		}
	}
	if err := f.ft.place(*k, v); !errors.Is(err, errNoRoom) {
		return err
	}
	if err := f.lru.Update(k, v, flags); err != nil {
		return err
	}
	f.ft.overflow(*k, true)
	return nil
}

// each4 calls f with every proven IPv4 flow: the array's, then the LRU's.
func (x *Dataplane) each4(keys []xlbConnKey, vals []xlbConn, f func(k *xlbConnKey, v *xlbConn)) error {
	x.ft.each(func(k xlbConnKey, v *xlbConn) { f(&k, v) })
	return readBatches(x.objs.Conns, keys, vals, func(i int) { f(&keys[i], &vals[i]) })
}

// Delete ends flow k: its slot, or else its entry in the LRU (taken off
// its home's count).
func (f flows4) Delete(key any) error {
	k := key.(*xlbConnKey)
	s, over := f.ft.find(*k)
	if s != nil {
		if !s.free() {
			return ebpf.ErrKeyNotExist
		}
		return nil
	}
	if !over {
		return ebpf.ErrKeyNotExist
	}
	if err := f.lru.Delete(k); err != nil {
		return err
	}
	f.ft.overflow(*k, false)
	return nil
}

// live counts the array's flows.
func (t *flowTable) live() int {
	n := 0
	t.each(func(xlbConnKey, *xlbConn) { n++ })
	return n
}

// flows4 is x's IPv4 flow table.
func (x *Dataplane) flows4() flows4 { return flows4{x.ft, x.objs.Conns} }

// fill writes flows as installs would (tests and benchmarks: many flows
// at once, with no packet).
func (f flows4) fill(keys []xlbConnKey, vals []xlbConn) error {
	for i := range keys {
		if err := f.Update(&keys[i], &vals[i], ebpf.UpdateAny); err != nil {
			return err
		}
	}
	return nil
}

// count is the flows f holds.
func (f flows4) count() (int, error) {
	n := f.ft.live()
	err := readBatches(f.lru, make([]xlbConnKey, 4096), make([]xlbConn, 4096), func(int) { n++ })
	return n, err
}
