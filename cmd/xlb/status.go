package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/xlbproject/xlb/pkg/control"
)

// runStatus prints the running daemon's services, reals, health, weights
// and VRRP state.
func runStatus(e env, args []string) int {
	fs := pflag.NewFlagSet("xlb status", pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	socket := fs.String("socket", control.DefaultSocket, "control socket of the daemon")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: xlb status [--json]\n\nShows the running daemon's services, reals (health, weights, counters) and VRRP state.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(e.stderr, "xlb status: %v\n", err)
		return 2
	}
	st, err := control.NewClient(*socket).Status()
	if err != nil {
		fmt.Fprintf(e.stderr, "xlb status: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return 0
	}
	printStatus(e.stdout, st)
	return 0
}

func printStatus(w io.Writer, st control.Status) {
	var ifs []string
	for name, mode := range st.Interfaces {
		ifs = append(ifs, name+" "+mode)
	}
	slices.Sort(ifs)
	fmt.Fprintf(w, "Data plane: %s (%s)  config: %s\n", st.Dataplane, strings.Join(ifs, ", "), st.ConfigFile)
	if st.LastError != "" {
		fmt.Fprintf(w, "LAST APPLY FAILED: %s\n", st.LastError)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nService / Real\tForward\tWeight\tHealth\tState\tActiveConn\tInActConn\tConns\tPackets\tBytes")
	for _, s := range st.Services {
		state := "quorum up"
		if !s.QuorumUp {
			state = fmt.Sprintf("QUORUM LOST (%d)", s.Quorum)
			if s.SorryServer != "" {
				state += ", sorry server " + s.SorryServer
			}
		}
		if s.Standby {
			state += ", standby (VRRP not MASTER)"
		}
		sched := s.Scheduler
		if s.Sloppy {
			sched += " sloppy_" + strings.ToLower(s.Protocol)
		}
		if s.Flags != "" {
			sched += " " + s.Flags
		}
		name := fmt.Sprintf("%s %s", s.Protocol, net.JoinHostPort(s.Addr, strconv.Itoa(int(s.Port))))
		if s.FWMark != 0 {
			name = fmt.Sprintf("FWM %d", s.FWMark) // as ipvsadm names it
		}
		fmt.Fprintf(tw, "%s %s\t\t\t\t%s\t\t\t%d\t%d\t%d\n", name, sched, state, s.Counters.Conns, s.Counters.Packets, s.Counters.Bytes)
		for _, r := range s.Reals {
			health := "up"
			if !r.Healthy {
				health = "DOWN"
			}
			state := "in service"
			switch {
			case !r.InService:
				state = "out"
			case !r.Resolved:
				state = "no MAC yet"
			case r.EffectiveWeight == 0:
				state = "quiesced"
			}
			weight := fmt.Sprint(r.Weight)
			if r.InService && r.EffectiveWeight != r.Weight {
				weight = fmt.Sprintf("%d (now %d)", r.Weight, r.EffectiveWeight)
			}
			fwd := r.Forward
			if r.Tunnel != "" {
				fwd += "/" + r.Tunnel
			}
			fmt.Fprintf(tw, "  -> %s:%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", r.Addr, r.Port, fwd, weight, health, state, r.ActiveConns, r.InactConns, r.Counters.Conns, r.Counters.Packets, r.Counters.Bytes)
		}
	}
	tw.Flush()
	if d := st.Defence; d != nil {
		printDefence(w, d)
	}
	if len(st.VRRP) > 0 {
		fmt.Fprintln(w, "\nVRRP:")
		for _, v := range st.VRRP {
			fmt.Fprintf(w, "  %s on %s, vrid %d, priority %d: %s", v.Name, v.Interface, v.VRID, v.Priority, v.State)
			if v.Note != "" {
				fmt.Fprintf(w, " (%s)", v.Note)
			}
			if len(v.Dropped) > 0 {
				reasons := slices.Sorted(maps.Keys(v.Dropped))
				parts := make([]string, len(reasons))
				for i, r := range reasons {
					parts[i] = fmt.Sprintf("%s %d", r, v.Dropped[r])
				}
				fmt.Fprintf(w, "; adverts dropped: %s", strings.Join(parts, ", "))
			}
			fmt.Fprintln(w)
		}
	}
	if b := st.BGP; b != nil {
		printBGP(w, b)
	}
	if sy := st.Sync; sy != nil {
		printSync(w, sy)
	}
}

// printSync shows the connection-sync daemons as ipvsadm -L --daemon
// does, what xlb's own did, and the VRRP sync gate.
func printSync(w io.Writer, sy *control.Sync) {
	fmt.Fprintln(w, "\nConnection sync:")
	for _, d := range sy.Daemons {
		fmt.Fprintf(w, "  %s sync daemon (mcast=%s, syncid=%d, maxlen=%d, group=%s, port=%d, ttl=%d)\n",
			d.Role, d.Interface, d.SyncID, d.MaxLen, d.Group, d.Port, d.TTL)
	}
	if x := sy.Stats; x != nil {
		fmt.Fprintf(w, "  sent %d records in %d messages (%d send errors, %d bulk dumps, %d records no message can carry); last pass over the flows took %v\n",
			x.SentRecords, x.SentMessages, x.SendErrors, x.Dumps, x.Unsendable, x.LastPass.Round(time.Microsecond))
		fmt.Fprintf(w, "  received %d records in %d messages: %d installed, %d stale, %d skipped, %d dropped; ignored %d of another syncid, %d malformed\n",
			x.ReceivedRecords, x.ReceivedMessages, x.Installed, x.Stale, x.Skipped, x.Dropped, x.OtherSyncID, x.Malformed)
		last := "never"
		if !x.LastReceived.IsZero() {
			last = x.LastReceived.Format(time.TimeOnly)
		}
		dump := "not received"
		switch {
		case !x.DumpReceived.IsZero():
			dump = fmt.Sprintf("received %v after asking", x.DumpReceived.Sub(x.DumpRequested).Round(time.Millisecond))
		case x.DumpRequested.IsZero():
			dump = "not asked for"
		}
		fmt.Fprintf(w, "  last received %s; bulk dump %s\n", last, dump)
	}
	if sy.Gate != "" {
		fmt.Fprintf(w, "  VRRP sync gate: %s\n", sy.Gate)
	}
}

// printBGP shows the speaker's sessions and what it announces.
func printBGP(w io.Writer, b *control.BGP) {
	draining := ""
	if b.Draining {
		draining = ", DRAINING"
	}
	fmt.Fprintf(w, "\nBGP: AS %d, router id %s%s\n", b.AS, b.RouterID, draining)
	for _, p := range b.Peers {
		fmt.Fprintf(w, "  peer %s %s since %s", p.Addr, p.State, p.Since.Format(time.TimeOnly))
		if p.Reason != "" && p.State != "established" {
			fmt.Fprintf(w, " (%s)", p.Reason)
		}
		fmt.Fprintln(w)
	}
	for _, v := range b.VIPs {
		if v.Announced {
			fmt.Fprintf(w, "  %s announced\n", v.VIP)
		} else {
			fmt.Fprintf(w, "  %s withdrawn: %s\n", v.VIP, v.Reason)
		}
	}
}

// printDefence shows the flood defence as IPVS's sysctls read, and the
// room it is measured on.
func printDefence(w io.Writer, d *control.Defence) {
	if d.Error != "" {
		fmt.Fprintf(w, "\nDefence: unreadable: %s\n", d.Error)
		return
	}
	mode := func(m int, on bool, detail string) string {
		name := [...]string{"0 never", "1 when short of room", "2 ENGAGED", "3 always"}[min(max(m, 0), 3)]
		if m == 3 || (on && m != 2) {
			name += " (engaged" + detail + ")"
		} else if m == 2 {
			name += detail
		}
		return name
	}
	rate := ""
	if d.DropRate != 0 {
		rate = fmt.Sprintf(", 1 in %d", d.DropRate)
	}
	fmt.Fprintf(w, "\nDefence: drop_entry %s, drop_packet %s, secure_tcp %s\n",
		mode(d.DropEntry, d.DropEntryOn, ""), mode(d.DropPacket, d.DropRate != 0, rate), mode(d.SecureTCP, d.SecureTCPOn, ""))
	fmt.Fprintf(w, "  room %d of %d %s free (amemthresh %d, am_droprate %d)", d.Room, d.RoomOf, d.RoomUnit, d.Threshold, d.AmDropRate)
	if d.MaxFlows != 0 {
		fmt.Fprintf(w, "; flows %d/%d, half-open %d/%d, drop_entry ended %d", d.Flows, d.MaxFlows, d.HalfOpen, d.MaxHalfOpen, d.Dropped)
	}
	fmt.Fprintln(w)
}
