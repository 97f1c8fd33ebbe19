package daemon

import (
	"log/slog"
	"time"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/dataplane/ipvs"
	"github.com/xlbproject/xlb/pkg/ipvssync"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/syncd"
)

// tcpStates are IPVS's TCP state names (ip_vs_proto_tcp.c) by number.
var tcpStates = map[string]uint16{
	"NONE": ipvssync.TCPNone, "ESTABLISHED": ipvssync.TCPEstablished, "SYN_SENT": ipvssync.TCPSynSent,
	"SYN_RECV": ipvssync.TCPSynRecv, "FIN_WAIT": ipvssync.TCPFinWait, "TIME_WAIT": ipvssync.TCPTimeWait,
	"CLOSE": ipvssync.TCPClose, "CLOSE_WAIT": ipvssync.TCPCloseWait, "LAST_ACK": ipvssync.TCPLastAck,
	"LISTEN": ipvssync.TCPListen, "SYNACK": ipvssync.TCPSynAck,
}

// adoptionRecords turns the kernel's connection table into sync records,
// as IPVS's master would send them: a template is a NONE entry with
// client port 0; the timeout is what the kernel has left (the next
// packet re-arms the flow with the full one).
func adoptionRecords(conns []dataplane.Conn) []ipvssync.Conn {
	out := make([]ipvssync.Conn, 0, len(conns))
	for _, c := range conns {
		r := ipvssync.Conn{Protocol: uint8(c.Protocol), Client: c.Client, Virtual: c.Virtual, Dest: c.Real,
			Timeout: max(c.Expires, time.Second)}
		switch {
		case c.State == "NONE" && c.Client.Port() == 0:
			r.Flags = ipvssync.Template | ipvssync.Inactive
		case c.Protocol == lvs.TCP:
			s, ok := tcpStates[c.State]
			if !ok {
				continue
			}
			r.State = s
			if s != ipvssync.TCPEstablished {
				r.Flags = ipvssync.Inactive
			}
		case c.Protocol == lvs.UDP:
			r.Flags = ipvssync.Inactive
		default:
			continue
		}
		out = append(out, r)
	}
	return out
}

// adoptIPVS installs the connections the kernel's IPVS is carrying into
// the XDP data plane, once its services are applied: a director that
// replaces keepalived+IPVS goes on with their open connections (the XDP
// program passes a packet of a flow it does not have to the kernel, so
// IPVS carries them until now). IPVS's own services are left alone.
func adoptIPVS(log *slog.Logger, t syncd.Table) {
	conns, err := ipvs.KernelConns()
	if err != nil {
		log.Warn("cannot adopt the kernel's IPVS connections", "error", err)
		return
	}
	if len(conns) == 0 {
		return
	}
	recs := adoptionRecords(conns)
	var total syncd.Installed
	for i := 0; i < len(recs); i += ipvssync.MaxConns {
		res, err := t.SyncInstall(recs[i:min(i+ipvssync.MaxConns, len(recs))])
		if err != nil {
			log.Warn("adopting the kernel's IPVS connections", "error", err)
		}
		total.Installed += res.Installed
		total.Stale += res.Stale
		total.Skipped += res.Skipped
		if res.Reason != "" {
			total.Reason = res.Reason
		}
	}
	log.Info("adopted the kernel's IPVS connections: the XDP data plane carries them from now on (IPVS's services stay; ipvsadm -C removes them)",
		"adopted", total.Installed, "kernel_entries", len(conns), "not_for_these_services", total.Skipped, "example_skipped", total.Reason)
}
