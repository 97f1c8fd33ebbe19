package ipvs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// DefaultSysctls is where the kernel shows IPVS's sysctls.
const DefaultSysctls = "/proc/sys/net/ipv4/vs"

func (v *Dataplane) sysctlDir() string {
	if v.opts.Sysctls != "" {
		return v.opts.Sysctls
	}
	return DefaultSysctls
}

// SetDefence implements dataplane.Dataplane: it writes IPVS's own
// sysctls, which the kernel then moves as it does for any director. With
// Keep the modes are left as the host set them; a zero threshold or rate
// leaves that sysctl as it is.
func (v *Dataplane) SetDefence(d dataplane.Defence) error {
	if err := d.Check(); err != nil {
		return err
	}
	var w []struct {
		name string
		val  int
	}
	add := func(name string, val int) {
		w = append(w, struct {
			name string
			val  int
		}{name, val})
	}
	if d.Threshold != 0 {
		add("amemthresh", d.Threshold)
	}
	if d.AmDropRate != 0 {
		add("am_droprate", d.AmDropRate)
	}
	if !d.Keep {
		add("drop_entry", d.DropEntry)
		add("drop_packet", d.DropPacket)
		add("secure_tcp", d.SecureTCP)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return inNS(v.opts.NetNS, func() error {
		var errs []error
		for _, s := range w {
			p := filepath.Join(v.sysctlDir(), s.name)
			if err := os.WriteFile(p, []byte(strconv.Itoa(s.val)+"\n"), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("set IPVS %s: %w", s.name, err))
			}
		}
		return errors.Join(errs...)
	})
}

// Defence implements dataplane.Dataplane: the sysctls as the kernel reads
// them, and free memory as update_defense_level measures it.
func (v *Dataplane) Defence() (dataplane.DefenceStatus, error) {
	var st dataplane.DefenceStatus
	v.mu.Lock()
	defer v.mu.Unlock()
	err := inNS(v.opts.NetNS, func() error {
		var errs []error
		read := func(name string, into *int) {
			b, err := os.ReadFile(filepath.Join(v.sysctlDir(), name))
			if err == nil {
				*into, err = strconv.Atoi(strings.TrimSpace(string(b)))
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("read IPVS %s: %w", name, err))
			}
		}
		read("drop_entry", &st.DropEntry)
		read("drop_packet", &st.DropPacket)
		read("secure_tcp", &st.SecureTCP)
		read("amemthresh", &st.Threshold)
		read("am_droprate", &st.AmDropRate)
		return errors.Join(errs...)
	})
	if err != nil {
		return st, err
	}
	free, total, err := memPages()
	if err != nil {
		return st, err
	}
	st.Room, st.RoomOf = free, total
	nomem := free < uint64(max(st.Threshold, 0))
	st.DropEntryOn = st.DropEntry == 3 || (st.DropEntry == 2 && nomem)
	switch {
	case st.DropPacket == 3:
		st.DropRate = st.AmDropRate
	case st.DropPacket == 2 && nomem:
		st.DropRate = st.Threshold / (st.Threshold - int(free))
	}
	st.SecureTCPOn = st.SecureTCP > 1
	return st, nil
}

// memPages is free memory as update_defense_level counts it (free RAM and
// buffers, in pages) and all RAM, from /proc/meminfo.
func memPages() (free, total uint64, err error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0, fmt.Errorf("read free memory: %w", err)
	}
	kb := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 {
			n, _ := strconv.ParseUint(f[1], 10, 64)
			kb[strings.TrimSuffix(f[0], ":")] = n
		}
	}
	page := uint64(os.Getpagesize() / 1024)
	return (kb["MemFree"] + kb["Buffers"]) / page, kb["MemTotal"] / page, nil
}

// sloppyOf says, for sloppy_tcp and sloppy_sctp, whether services want
// them on: every one of a protocol global has on does. IPVS has one switch
// per host and protocol: the services of a protocol all want it or none
// does.
func sloppyOf(services []dataplane.Service, global map[lvs.Protocol]bool) (map[string]bool, error) {
	out := map[string]bool{}
	var errs []error
	for _, p := range []struct {
		proto lvs.Protocol
		name  string
	}{{lvs.TCP, "sloppy_tcp"}, {lvs.SCTP, "sloppy_sctp"}} {
		var on, off []string
		for _, s := range services {
			if s.Protocol != p.proto {
				continue
			}
			if s.Sloppy || global[p.proto] {
				on = append(on, s.ServiceKey.String())
			} else {
				off = append(off, s.ServiceKey.String())
			}
		}
		if len(on) > 0 && len(off) > 0 {
			errs = append(errs, fmt.Errorf("%s: IPVS has it for the whole host (net.ipv4.vs.%s), not per service: %s want it, %s do not (xlb run --%s sets it for every %s service)",
				p.name, p.name, strings.Join(on, ", "), strings.Join(off, ", "), strings.ReplaceAll(p.name, "_", "-"), p.proto))
		}
		out[p.name] = len(on) > 0 || global[p.proto]
	}
	return out, errors.Join(errs...)
}

// setSloppy turns sloppy_tcp and sloppy_sctp on where want says, and off
// where xlb turned them on and no service wants them now; a switch xlb
// never turned on stays as the host set it.
func (v *Dataplane) setSloppy(want map[string]bool) error {
	if v.sloppy == nil {
		v.sloppy = map[string]bool{}
	}
	return inNS(v.opts.NetNS, func() error {
		var errs []error
		for name, on := range want {
			if on == v.sloppy[name] {
				continue
			}
			val := "0\n"
			if on {
				val = "1\n"
			}
			if err := os.WriteFile(filepath.Join(v.sysctlDir(), name), []byte(val), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("set IPVS %s: %w", name, err))
				continue
			}
			v.sloppy[name] = on
		}
		return errors.Join(errs...)
	})
}
