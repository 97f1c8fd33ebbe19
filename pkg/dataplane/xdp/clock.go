package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// The data plane's clock is the kernel's jiffies, scaled to nanoseconds
// on CLOCK_MONOTONIC's time base: bpf_jiffies64 is one load (the JIT
// inlines it) where bpf_ktime_get_coarse_ns is a helper call, 3 ns of a
// 30 ns packet here. Both move once a tick, so a flow's times keep the
// resolution they had; the control plane still reads CLOCK_MONOTONIC.
//
// The kernel does not say its HZ; the loader measures it. A program run
// by BPF_PROG_TEST_RUN reads jiffies, the coarse clock and jiffies again;
// the coarse clock moves at the tick that moves jiffies (the same
// handler updates both), so between two increments of jiffies it moves
// by one tick. The tick is snapped to the kernel's TICK_NSEC for the
// nearest whole HZ, and the base is the coarse clock less jiffies'
// nanoseconds, so that jiffies*tick+base reads what the coarse clock
// would, within a tick.
type jiffyClock struct {
	tick uint64 // ns per jiffy (the kernel's TICK_NSEC)
	base uint64 // coarse ns - jiffies*tick, modulo 2^64
}

// errNoJiffyClock: the tick could not be measured; the data plane keeps
// the coarse clock.
var errNoJiffyClock = errors.New("no steady tick measured")

// clockSample is one run of the clock program: jiffies before and after
// the coarse clock's reading.
type clockSample struct{ j0, ns, j1 uint64 }

func clockProgram() (*ebpf.Program, error) {
	// r6 = ctx; r7 = jiffies; r8 = coarse ns; r9 = jiffies; the three
	// written at the packet's start.
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.FnJiffies64.Call(),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.FnKtimeGetCoarseNs.Call(),
		asm.Mov.Reg(asm.R8, asm.R0),
		asm.FnJiffies64.Call(),
		asm.Mov.Reg(asm.R9, asm.R0),
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 24),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.StoreMem(asm.R2, 0, asm.R7, asm.DWord),
		asm.StoreMem(asm.R2, 8, asm.R8, asm.DWord),
		asm.StoreMem(asm.R2, 16, asm.R9, asm.DWord),
		asm.Mov.Imm(asm.R0, 2).WithSymbol("out"), // XDP_PASS
		asm.Return(),
	}
	return ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: insns})
}

func (s *clockSample) read(p *ebpf.Program, buf []byte) error {
	out := make([]byte, len(buf))
	if _, err := p.Run(&ebpf.RunOptions{Data: buf, DataOut: out}); err != nil {
		return err
	}
	s.j0 = binary.NativeEndian.Uint64(out[0:])
	s.ns = binary.NativeEndian.Uint64(out[8:])
	s.j1 = binary.NativeEndian.Uint64(out[16:])
	return nil
}

// kernelHZ: the HZ a kernel can be configured with (kernel/Kconfig.hz,
// and the architectures' own choices), at least 2.3% apart: a tick measured within 1% names one.
var kernelHZ = []uint64{24, 32, 48, 64, 100, 128, 200, 250, 256, 300, 500, 512, 1000, 1024, 1200}

// measureJiffyClock times six ticks (24 ms at HZ=250, 60 ms at HZ=100;
// it gives up after 200 ms).
func measureJiffyClock() (jiffyClock, error) {
	p, err := clockProgram()
	if err != nil {
		return jiffyClock{}, err
	}
	defer p.Close()
	return sampleJiffyClock(func(s *clockSample) error { return s.read(p, make([]byte, 64)) }, time.Now, 200*time.Millisecond)
}

// sampleJiffyClock reads samples until it has seen jiffies move by one
// seven times in a row, and derives the clock from the coarse clock's
// readings at those moves.
func sampleJiffyClock(read func(*clockSample) error, now func() time.Time, limit time.Duration) (jiffyClock, error) {
	var edges []clockSample // the first sample of each new jiffy
	var prev clockSample
	start := now()
	for len(edges) < 7 {
		if now().Sub(start) > limit {
			return jiffyClock{}, fmt.Errorf("%w in %v", errNoJiffyClock, limit)
		}
		var s clockSample
		if err := read(&s); err != nil {
			return jiffyClock{}, err
		}
		if s.j0 != s.j1 {
			continue // a tick between the readings
		}
		if prev.j0 != 0 && s.j0 != prev.j0 {
			if s.j0 != prev.j0+1 {
				edges = edges[:0] // ticks skipped (idle, preempted): start over
			}
			edges = append(edges, s)
		}
		prev = s
	}
	// The coarse clock's moves between consecutive jiffies: one tick
	// each, give or take the tick's lateness.
	var sum uint64
	for i := 1; i < len(edges); i++ {
		if edges[i].j0 != edges[i-1].j0+1 {
			return jiffyClock{}, fmt.Errorf("%w: jiffies jumped", errNoJiffyClock)
		}
		sum += edges[i].ns - edges[i-1].ns
	}
	mean := float64(sum) / float64(len(edges)-1)
	hz := uint64(0)
	for _, h := range kernelHZ {
		if math.Abs(1e9/mean-float64(h)) <= 0.01*float64(h) {
			hz = h
		}
	}
	if hz == 0 {
		return jiffyClock{}, fmt.Errorf("%w: a tick of %.0f ns is no HZ a kernel is built with", errNoJiffyClock, mean)
	}
	tick := (uint64(1e9) + hz/2) / hz // the kernel's TICK_NSEC
	last := edges[len(edges)-1]
	return jiffyClock{tick: tick, base: last.ns - last.j0*tick}, nil
}

// now is the data plane's clock at jiffies j.
func (c jiffyClock) now(j uint64) uint64 { return c.base + j*c.tick }

// setJiffyClock gives the programs in spec the clock c.
func setJiffyClock(spec *ebpf.CollectionSpec, c jiffyClock) error {
	if err := spec.Variables["jiffy_ns"].Set(c.tick); err != nil {
		return fmt.Errorf("configure bpf clock: %w", err)
	}
	if err := spec.Variables["jiffy_base"].Set(c.base); err != nil {
		return fmt.Errorf("configure bpf clock: %w", err)
	}
	return nil
}
