package ipvsadm

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// ErrRestoreInput is returned by [State.Exec] for -R, which needs the
// input that [State.Restore] takes.
var ErrRestoreInput = errors.New("restore reads its rules from input: use State.Restore")

// Exec runs a parsed command the way ipvsadm runs it against the kernel:
// listing, save, help and version write to w; the other commands change
// the table (see [State.Apply]).
func (s *State) Exec(w io.Writer, cmd Command) error {
	switch cmd.Kind {
	case CmdList:
		switch {
		case cmd.List.Connection:
			return s.ListConns(w, cmd.List)
		case cmd.HasService:
			return s.ListService(w, &cmd.Service, cmd.List)
		case cmd.List.Timeout:
			return s.ListTimeout(w)
		case cmd.List.Daemon:
			return nil // xlb runs no sync daemon: ipvsadm prints nothing then
		}
		return s.List(w, cmd.List)
	case CmdSave:
		return s.Save(w, cmd.List)
	case CmdHelp:
		return WriteUsage(w, "ipvsadm")
	case CmdVersion:
		return WriteVersion(w)
	case CmdGetLaddr:
		return s.ListLaddrs(w, cmd)
	case CmdRestore:
		return &Error{Msg: ErrRestoreInput.Error(), Code: ExitFailure, Err: ErrRestoreInput}
	}
	return s.Apply(cmd)
}

// List writes the table as ipvsadm -L writes it, header included: the
// default columns, or those of --stats, --rate, --thresholds,
// --persistent-conn or --tun-info (in that order of precedence, as in
// ipvsadm when several are given).
func (s *State) List(w io.Writer, opt ListOptions) error {
	var b strings.Builder
	v := s.info()
	fmt.Fprintf(&b, "IP Virtual Server version %d.%d.%d (size=%d)\n",
		v.Version>>16&0xff, v.Version>>8&0xff, v.Version&0xff, v.Size)
	f := fmtFlags{ListOptions: opt}
	f.title(&b)
	for _, svc := range sortedServices(s.Services, opt.NoSort) {
		f.service(&b, &svc)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ListService writes one service as ipvsadm -L -t|-u|-f writes it (no
// header line). A missing service is [ErrNoService] with exit status 1.
func (s *State) ListService(w io.Writer, key *Service, opt ListOptions) error {
	svc := s.Find(key)
	if svc == nil || svc.Protocol != key.Protocol {
		return &Error{Msg: ErrNoService.Error(), Code: ExitList, Err: ErrNoService}
	}
	one := sortedServices([]Service{*svc}, opt.NoSort)[0]
	var b strings.Builder
	f := fmtFlags{ListOptions: opt}
	f.title(&b)
	f.service(&b, &one)
	_, err := io.WriteString(w, b.String())
	return err
}

// Save writes the table as ipvsadm -S (ipvsadm-save) writes it: the -A and
// -a lines that -R reads back. Like ipvsadm it leaves out thresholds.
func (s *State) Save(w io.Writer, opt ListOptions) error {
	var b strings.Builder
	f := fmtFlags{ListOptions: opt, rule: true}
	for _, svc := range sortedServices(s.Services, false) {
		f.service(&b, &svc)
		// xlbadm's: a FULLNAT service's local addresses, as the
		// commands that give them (-R reads them back).
		if svc.FWMark != 0 {
			continue
		}
		for _, a := range svc.LocalAddrs {
			fmt.Fprintf(&b, "--add-laddr %s %s --laddr %s\n", protoOption(svc.Protocol), f.addrPort(svc.Addr, svc.Port, svc.Protocol), a)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ListLaddrs writes the local addresses of every service with some (or
// of the one cmd names), as xlbadm --get-laddr lists them: the service,
// how many, then one address a line.
func (s *State) ListLaddrs(w io.Writer, cmd Command) error {
	var b strings.Builder
	f := fmtFlags{ListOptions: cmd.List}
	fmt.Fprintf(&b, "%-8s %-33s %-6s %s\n", "Prot", "VIP:VPort", "TOTAL", "LocalAddress")
	found := false
	for _, svc := range sortedServices(s.Services, false) {
		if cmd.HasService && !SameService(&svc, &cmd.Service) {
			continue
		}
		found = found || cmd.HasService
		if len(svc.LocalAddrs) == 0 && !cmd.HasService {
			continue
		}
		fmt.Fprintf(&b, "%-8s %-33s %-6d\n", protoName(svc.Protocol), f.addrPort(svc.Addr, svc.Port, svc.Protocol), len(svc.LocalAddrs))
		for _, a := range svc.LocalAddrs {
			fmt.Fprintf(&b, "%-8s %-33s %-6s %s\n", "", "", "", a)
		}
	}
	if cmd.HasService && !found {
		return &Error{Msg: ErrNoService.Error(), Code: ExitList, Err: ErrNoService}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ListTimeout writes the line of ipvsadm -L --timeout.
func (s *State) ListTimeout(w io.Writer) error {
	_, err := fmt.Fprintf(w, "Timeout (tcp tcpfin udp): %d %d %d\n",
		s.Timeouts.TCP, s.Timeouts.TCPFin, s.Timeouts.UDP)
	return err
}

// ListConns writes the connection table as ipvsadm -Lc writes it, in the
// order of s.Conns (ipvsadm does not sort it).
func (s *State) ListConns(w io.Writer, opt ListOptions) error {
	var b strings.Builder
	f := fmtFlags{ListOptions: opt}
	b.WriteString("IPVS connection entries\n")
	if opt.PersistentConn {
		fmt.Fprintf(&b, "pro expire %-11s %-18s %-18s %-18s %-16s %s\n",
			"state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		fmt.Fprintf(&b, "pro expire %-11s %-18s %-18s %s\n",
			"state", "source", "virtual", "destination")
	}
	for i := range s.Conns {
		c := &s.Conns[i]
		proto := c.Protocol
		if proto != lvs.TCP && proto != lvs.UDP && proto != lvs.SCTP {
			proto = lvs.IP
		}
		src := f.addrPort(c.Client.Addr(), c.Client.Port(), proto)
		virt := f.addrPort(c.Virtual.Addr(), c.Virtual.Port(), proto)
		dst := f.addrPort(c.Dest.Addr(), c.Dest.Port(), proto)
		secs := uint32(max(c.Expires, 0) / time.Second)
		exp := fmt.Sprintf("%02d:%02d", secs/60, secs%60)
		if opt.PersistentConn && c.PEName != "" {
			fmt.Fprintf(&b, "%-3s %-6s %-11s %-18s %-18s %-16s %-18s %s\n",
				c.Protocol, exp, c.State, src, virt, dst, c.PEName, c.PEData)
		} else {
			fmt.Fprintf(&b, "%-3s %-6s %-11s %-18s %-18s %s\n",
				c.Protocol, exp, c.State, src, virt, dst)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type fmtFlags struct {
	ListOptions
	rule bool
}

// addrPort is addrport_to_anyname: host:port, [v6]:port.
func (f *fmtFlags) addrPort(a netip.Addr, port uint16, proto lvs.Protocol) string {
	host, ps := inetNtop(a), utoa(uint64(port))
	if !f.Numeric && f.Names != nil {
		if n, ok := f.Names.HostName(a); ok {
			host = n
		}
		if proto == lvs.TCP || proto == lvs.UDP || proto == lvs.SCTP {
			if n, ok := f.Names.PortName(port, proto); ok {
				ps = n
			}
		}
	}
	if a.Is4() {
		return host + ":" + ps
	}
	return "[" + host + "]:" + ps
}

func (f *fmtFlags) title(b *strings.Builder) {
	const rs = "  -> RemoteAddress:Port\n"
	switch {
	case f.rule:
	case f.Stats:
		fmt.Fprintf(b, "%-33s %8s %8s %8s %8s %8s\n"+rs, "Prot LocalAddress:Port",
			"Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case f.Rate:
		fmt.Fprintf(b, "%-33s %8s %8s %8s %8s %8s\n"+rs, "Prot LocalAddress:Port",
			"CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case f.Thresholds:
		fmt.Fprintf(b, "%-33s %-10s %-10s %-10s %-10s\n"+rs, "Prot LocalAddress:Port",
			"Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	case f.PersistentConn:
		fmt.Fprintf(b, "%-33s %-9s %-11s %-10s %-10s\n"+rs, "Prot LocalAddress:Port",
			"Weight", "PersistConn", "ActiveConn", "InActConn")
	case f.TunInfo:
		b.WriteString("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	default:
		b.WriteString("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
}

// largenum is print_largenum: right-aligned in 9 columns, scaled to
// K/M/G/T past eight digits unless --exact.
func (f *fmtFlags) largenum(b *strings.Builder, v uint64) {
	if f.Exact {
		s := utoa(v)
		width := 9
		if len(s) > 8 {
			width = len(s) + 1
		}
		fmt.Fprintf(b, "%*s", width, s)
		return
	}
	switch {
	case v < 100000000:
		fmt.Fprintf(b, "%9d", v)
	case v < 1000000000:
		fmt.Fprintf(b, "%8dK", v/1000)
	case v < 100000000000:
		fmt.Fprintf(b, "%8dM", v/1000000)
	case v < 100000000000000:
		fmt.Fprintf(b, "%8dG", v/1000000000)
	default:
		fmt.Fprintf(b, "%8dT", v/1000000000000)
	}
}

// schedFlags is print_sched_flags: the flag names as the scheduler knows
// them, comma-separated.
func schedFlags(svc *Service) string {
	return strings.Join(sched.FlagNames(svc.Scheduler, svc.Flags), ",")
}

func (f *fmtFlags) service(b *strings.Builder, svc *Service) {
	v6 := svc.Is6()
	var name string
	switch {
	// Debian's ipvsadm 1.31 prints the mark with %d: 4294967295 is -1
	// (upstream fixed it after 1.31, in e61c8cd).
	case svc.FWMark != 0 && f.rule:
		name = "-f " + strconv.Itoa(int(int32(svc.FWMark)))
		if v6 {
			name += " -6"
		}
	case svc.FWMark != 0:
		name = "FWM  " + strconv.Itoa(int(int32(svc.FWMark)))
		if v6 {
			name += " IPv6"
		}
	case f.rule:
		name = protoOption(svc.Protocol) + " " + f.addrPort(svc.Addr, svc.Port, svc.Protocol)
	default:
		name = fmt.Sprintf("%-4s %s", protoName(svc.Protocol), f.addrPort(svc.Addr, svc.Port, svc.Protocol))
		if !v6 {
			name = truncate(name, 33)
		}
	}

	switch {
	case f.rule:
		fmt.Fprintf(b, "-A %s -s %s", name, svc.Scheduler)
		if svc.Persistent {
			fmt.Fprintf(b, " -p %d", svc.Timeout)
			if !v6 && svc.Netmask != 0xffffffff {
				b.WriteString(" -M " + inetNtoa(svc.Netmask))
			}
			if v6 && svc.Netmask != 128 {
				fmt.Fprintf(b, " -M %d", int32(svc.Netmask))
			}
		}
		if svc.PE != "" {
			b.WriteString(" --pe " + svc.PE)
		}
		if svc.Flags&lvs.OnePacket != 0 {
			b.WriteString(" -o")
		}
		if svc.Flags&lvs.SchedFlags != 0 {
			b.WriteString(" -b " + schedFlags(svc))
		}
	case f.Stats:
		fmt.Fprintf(b, "%-33s", name)
		st := &svc.Stats
		for _, v := range []uint64{st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes} {
			f.largenum(b, v)
		}
	case f.Rate:
		fmt.Fprintf(b, "%-33s", name)
		r := &svc.Rates
		for _, v := range []uint64{r.CPS, r.InPPS, r.OutPPS, r.InBPS, r.OutBPS} {
			f.largenum(b, v)
		}
	default:
		b.WriteString(name + " " + svc.Scheduler)
		if svc.Flags&lvs.SchedFlags != 0 {
			b.WriteString(" (" + schedFlags(svc) + ")")
		}
		if svc.Persistent {
			fmt.Fprintf(b, " persistent %d", svc.Timeout)
			if !v6 && svc.Netmask != 0xffffffff {
				b.WriteString(" mask " + inetNtoa(svc.Netmask))
			}
			if v6 && svc.Netmask != 128 {
				fmt.Fprintf(b, " mask %d", int32(svc.Netmask))
			}
			if svc.PE != "" {
				b.WriteString(" pe " + svc.PE)
			}
		}
		if svc.Flags&lvs.OnePacket != 0 {
			b.WriteString(" ops")
		}
	}
	b.WriteByte('\n')

	for i := range svc.Dests {
		f.dest(b, svc, name, &svc.Dests[i])
	}
}

var (
	tunFlagNames = [...]string{"-c", "+c", "r+c"}
	tunFlagOpts  = [...]string{"--tun-nocsum", "--tun-csum", "--tun-remcsum"}
)

func tunFlag(names []string, fl TunnelFlags) string {
	if int(fl) < len(names) {
		return names[fl]
	}
	return "(null)"
}

// tunInfo is fwd_tun_info, or "n/a".
func tunInfo(d *Dest) string {
	if d.Forward != lvs.TUN {
		return "n/a"
	}
	switch d.Tunnel {
	case TunnelIPIP:
		return "ipip"
	case TunnelGUE:
		return truncate(fmt.Sprintf("gue:%d:%s", d.TunPort, tunFlag(tunFlagNames[:], d.TunFlags)), 15)
	case TunnelGRE:
		return truncate("gre:"+tunFlag(tunFlagNames[:], d.TunFlags), 15)
	}
	return "n/a"
}

func (f *fmtFlags) dest(b *strings.Builder, svc *Service, svcName string, d *Dest) {
	name := f.addrPort(d.Addr, d.Port, svc.Protocol)
	if !f.rule && !d.Addr.Is6() {
		name = truncate(name, 28)
	}
	switch {
	case f.rule:
		fmt.Fprintf(b, "-a %s -r %s %s -w %d", svcName, name, forwardOption(d.Forward), d.Weight)
		if d.Forward == lvs.TUN {
			switch d.Tunnel {
			case TunnelGRE:
				fmt.Fprintf(b, " --tun-type %s %s", d.Tunnel, tunFlag(tunFlagOpts[:], d.TunFlags))
			case TunnelGUE:
				fmt.Fprintf(b, " --tun-type %s --tun-port %d %s", d.Tunnel, d.TunPort, tunFlag(tunFlagOpts[:], d.TunFlags))
			case TunnelIPIP:
				fmt.Fprintf(b, " --tun-type %s", d.Tunnel)
			}
		}
		b.WriteByte('\n')
	case f.Stats:
		fmt.Fprintf(b, "  -> %-28s", name)
		st := &d.Stats
		for _, v := range []uint64{st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes} {
			f.largenum(b, v)
		}
		b.WriteByte('\n')
	case f.Rate:
		fmt.Fprintf(b, "  -> %-28s %8d %8d %8d", name, d.Rates.CPS, d.Rates.InPPS, d.Rates.OutPPS)
		f.largenum(b, d.Rates.InBPS)
		f.largenum(b, d.Rates.OutBPS)
		b.WriteByte('\n')
	case f.Thresholds:
		fmt.Fprintf(b, "  -> %-28s %-10d %-10d %-10d %-10d\n", name,
			d.UThreshold, d.LThreshold, d.ActiveConns, d.InactConns)
	case f.PersistentConn:
		fmt.Fprintf(b, "  -> %-28s %-9d %-11d %-10d %-10d\n", name,
			uint32(d.Weight), d.PersistConns, d.ActiveConns, d.InactConns)
	case f.TunInfo:
		fmt.Fprintf(b, "  -> %-28s %-7s %-13s %-6d %-10d %-10d\n", name,
			d.Forward, tunInfo(d), d.Weight, d.ActiveConns, d.InactConns)
	default:
		fmt.Fprintf(b, "  -> %-28s %-7s %-6d %-10d %-10d\n", name,
			d.Forward, d.Weight, d.ActiveConns, d.InactConns)
	}
}

// WriteDaemons writes ipvsadm -L --daemon: each sync daemon running, the
// master first, with the settings the kernel reports.
func WriteDaemons(w io.Writer, ds []Daemon) error {
	for _, d := range ds {
		kind := "master"
		if d.Backup {
			kind = "backup"
		}
		if _, err := fmt.Fprintf(w, "%s sync daemon (mcast=%s, syncid=%d, maxlen=%d, group=%s, port=%d, ttl=%d)\n",
			kind, d.McastIfn, d.SyncID, d.SyncMaxlen, d.McastGroup, d.McastPort, d.McastTTL); err != nil {
			return err
		}
	}
	return nil
}
