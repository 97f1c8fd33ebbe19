package xdp

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// The data plane's clock is the kernel's jiffies, scaled to nanoseconds
// on CLOCK_MONOTONIC's time base: bpf_jiffies64 is one load (the JIT
// inlines it) where bpf_ktime_get_coarse_ns is a helper call, 3 ns of a
// 20 ns packet here. Both move once a tick, so a flow's times keep the
// resolution they had; the control plane still reads CLOCK_MONOTONIC.
//
// The kernel ticks jiffies from CLOCK_MONOTONIC in steps of TICK_NSEC
// (tick_do_update_jiffies64 moves last_jiffies_update by whole ticks), so
// jiffies*TICK_NSEC is CLOCK_MONOTONIC less a constant, floored to a tick.
// TICK_NSEC comes from the kernel's HZ, which the kernel's own config
// says (/proc/config.gz, or /boot/config-<release>): measuring it instead
// could not tell 250 from 256 in less than a second. The constant comes
// from a small program run by BPF_PROG_TEST_RUN that reads jiffies and
// the coarse clock together. No config, or samples that do not fit the
// tick: the coarse clock stays.
type jiffyClock struct {
	tick uint64 // ns per jiffy (the kernel's TICK_NSEC)
	base uint64 // coarse ns - jiffies*tick at its least, modulo 2^64
}

// errNoJiffyClock: the data plane keeps the coarse clock.
var errNoJiffyClock = errors.New("no jiffies clock")

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

// measureJiffyClock is the clock of this kernel, measured once a process.
var measureJiffyClock = sync.OnceValues(func() (jiffyClock, error) {
	hz, err := kernelHZ()
	if err != nil {
		return jiffyClock{}, fmt.Errorf("%w: %w", errNoJiffyClock, err)
	}
	p, err := clockProgram()
	if err != nil {
		return jiffyClock{}, err
	}
	defer p.Close()
	buf := make([]byte, 64)
	return sampleJiffyClock(hz, func(s *clockSample) error { return s.read(p, buf) }, func() { time.Sleep(time.Millisecond) })
})

// sampleJiffyClock takes 20 samples (a millisecond apart in the loader)
// and derives the base from them, checking that every one fits the tick
// of hz: the coarse clock less jiffies' nanoseconds stays within two
// ticks (the coarse clock moves in steps of its own, about a tick long).
func sampleJiffyClock(hz uint64, read func(*clockSample) error, pause func()) (jiffyClock, error) {
	if hz == 0 {
		return jiffyClock{}, fmt.Errorf("%w: HZ 0", errNoJiffyClock)
	}
	c := jiffyClock{tick: (1_000_000_000 + hz/2) / hz} // the kernel's TICK_NSEC
	var lo, hi int64
	n := 0
	for range 20 {
		var s clockSample
		if err := read(&s); err != nil {
			return jiffyClock{}, err
		}
		pause()
		if s.j0 != s.j1 {
			continue // a tick between the readings
		}
		d := int64(s.ns - s.j0*c.tick)
		if n == 0 || d < lo {
			lo = d
		}
		if n == 0 || d > hi {
			hi = d
		}
		n++
	}
	if n < 10 {
		return jiffyClock{}, fmt.Errorf("%w: jiffies moved during %d of 20 samples", errNoJiffyClock, 20-n)
	}
	if hi-lo > 2*int64(c.tick) {
		return jiffyClock{}, fmt.Errorf("%w: the coarse clock strays %d ns from a tick of %d ns", errNoJiffyClock, hi-lo, c.tick)
	}
	c.base = uint64(lo)
	return c, nil
}

// kernelHZ reads CONFIG_HZ from the running kernel's config.
func kernelHZ() (uint64, error) {
	var conf []byte
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		z, err := gzip.NewReader(f)
		if err != nil {
			return 0, fmt.Errorf("read /proc/config.gz: %w", err)
		}
		if conf, err = io.ReadAll(io.LimitReader(z, 16<<20)); err != nil {
			return 0, fmt.Errorf("read /proc/config.gz: %w", err)
		}
	} else {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return 0, err
		}
		path := "/boot/config-" + unix.ByteSliceToString(u.Release[:])
		if conf, err = os.ReadFile(path); err != nil {
			return 0, fmt.Errorf("the kernel's config: no /proc/config.gz, and %w", err)
		}
	}
	return configHZ(conf)
}

// configHZ is CONFIG_HZ in a kernel config.
func configHZ(conf []byte) (uint64, error) {
	for line := range strings.Lines(string(conf)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "CONFIG_HZ="); ok {
			hz, err := strconv.ParseUint(v, 10, 32)
			if err != nil || hz == 0 {
				return 0, fmt.Errorf("CONFIG_HZ=%s in the kernel's config", v)
			}
			return hz, nil
		}
	}
	return 0, errors.New("no CONFIG_HZ in the kernel's config")
}

// now is the data plane's clock at jiffies j.
func (c jiffyClock) now(j uint64) uint64 { return c.base + j*c.tick }

// setJiffyClock gives the programs in spec the clock c.
func setJiffyClock(spec *ebpf.CollectionSpec, c jiffyClock) error {
	if err := spec.Variables[xlbVarJiffyNs].Set(c.tick); err != nil {
		return fmt.Errorf("configure bpf clock: %w", err)
	}
	if err := spec.Variables[xlbVarJiffyBase].Set(c.base); err != nil {
		return fmt.Errorf("configure bpf clock: %w", err)
	}
	return nil
}
