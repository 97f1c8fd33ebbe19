// Package metrics exports the director's state as Prometheus metrics: per
// service and per real, the data plane's counters, ActiveConn/InActConn,
// health and weights, and how the data plane is attached. Values are read
// at scrape time from the same status the control API serves.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xlbproject/xlb/pkg/control"
)

var (
	svcLabels  = []string{"protocol", "vip", "port"}
	realLabels = []string{"protocol", "vip", "port", "real"}

	svcPackets = prometheus.NewDesc("xlb_service_packets_total", "Packets from clients to the virtual service.", svcLabels, nil)
	svcBytes   = prometheus.NewDesc("xlb_service_bytes_total", "Bytes from clients to the virtual service.", svcLabels, nil)
	svcConns   = prometheus.NewDesc("xlb_service_connections_total", "Connections scheduled to the virtual service.", svcLabels, nil)
	svcQuorum  = prometheus.NewDesc("xlb_service_quorum_up", "1 while the service has its quorum of live weight, 0 while the sorry server (if any) serves.", svcLabels, nil)
	svcStandby = prometheus.NewDesc("xlb_service_standby", "1 while the VIP's VRRP instance is not MASTER here: the service forwards nothing.", svcLabels, nil)

	realPackets  = prometheus.NewDesc("xlb_real_packets_total", "Packets from clients forwarded to the real server.", realLabels, nil)
	realBytes    = prometheus.NewDesc("xlb_real_bytes_total", "Bytes from clients forwarded to the real server.", realLabels, nil)
	realConns    = prometheus.NewDesc("xlb_real_connections_total", "Connections scheduled to the real server.", realLabels, nil)
	realOutPkts  = prometheus.NewDesc("xlb_real_reply_packets_total", "Reply packets from the real server translated back (NAT).", realLabels, nil)
	realOutBytes = prometheus.NewDesc("xlb_real_reply_bytes_total", "Reply bytes from the real server translated back (NAT).", realLabels, nil)
	realActive   = prometheus.NewDesc("xlb_real_active_connections", "IPVS ActiveConn of the real server.", realLabels, nil)
	realInactive = prometheus.NewDesc("xlb_real_inactive_connections", "IPVS InActConn of the real server.", realLabels, nil)
	realHealthy  = prometheus.NewDesc("xlb_real_healthy", "1 when all the real server's checkers are up.", realLabels, nil)
	realWeight   = prometheus.NewDesc("xlb_real_weight", "Configured weight of the real server.", realLabels, nil)
	realEffWt    = prometheus.NewDesc("xlb_real_effective_weight", "Weight the data plane uses now (0: quiesced or out of the pool).", realLabels, nil)

	dpInfo     = prometheus.NewDesc("xlb_dataplane_info", "How the data plane forwards: 1 per interface, with its mode.", []string{"dataplane", "interface", "mode"}, nil)
	dpApplyOK  = prometheus.NewDesc("xlb_dataplane_apply_ok", "0 when the last change could not be applied to the data plane.", nil, nil)
	dpNextHop  = prometheus.NewDesc("xlb_nexthop_changes_total", "Reals' next hops (MACs) changed at once on a neighbour event.", nil, nil)
	defMode    = prometheus.NewDesc("xlb_defence_mode", "The flood defence strategy's mode, as IPVS's sysctl reads: 0 never, 1 when short of room, 2 engaged now, 3 always.", []string{"strategy"}, nil)
	defEngaged = prometheus.NewDesc("xlb_defence_engaged", "1 while the flood defence strategy acts.", []string{"strategy"}, nil)
	defRate    = prometheus.NewDesc("xlb_defence_drop_rate", "drop_packet drops 1 in this many new connections (0: none).", nil, nil)
	defRoom    = prometheus.NewDesc("xlb_defence_room", "What the defence measures room by: free flow-table entries (XDP) or free memory pages (IPVS).", []string{"unit"}, nil)
	defThresh  = prometheus.NewDesc("xlb_defence_threshold", "amemthresh: the room below which modes 1 engage.", []string{"unit"}, nil)
	dpFlows    = prometheus.NewDesc("xlb_flows", "Flows in the XDP flow table, and its size.", []string{"table", "of"}, nil)
	defDropped = prometheus.NewDesc("xlb_defence_dropped_entries_total", "Flows drop_entry ended (XDP).", nil, nil)
	dpReasons  = prometheus.NewDesc("xlb_dataplane_packets_total", "Packets to VIPs the data plane dropped or passed, by reason (see bpf/xdp_lb.bpf.c).", []string{"reason"}, nil)
	vrrpState  = prometheus.NewDesc("xlb_vrrp_state", "1 for the VRRP instance's current state (MASTER, BACKUP, FAULT, INIT).", []string{"instance", "interface", "vrid", "state"}, nil)
	vrrpPrio   = prometheus.NewDesc("xlb_vrrp_effective_priority", "The VRRP instance's effective priority.", []string{"instance", "interface", "vrid"}, nil)
	vrrpDrops  = prometheus.NewDesc("xlb_vrrp_adverts_dropped_total", "Received VRRP adverts the instance refused, by reason (auth_pass, unicast_src, ttl, vrid, ...).", []string{"instance", "interface", "vrid", "reason"}, nil)
	bgpPeerUp  = prometheus.NewDesc("xlb_bgp_peer_up", "1 while the BGP session with the peer is established.", []string{"peer"}, nil)
	bgpVIP     = prometheus.NewDesc("xlb_bgp_vip_announced", "1 while the VIP is announced over BGP (withdrawn: quorum lost, or draining).", []string{"vip"}, nil)
	syncUp     = prometheus.NewDesc("xlb_sync_daemon_up", "1 for each connection-sync daemon running (role master or backup).", []string{"role", "interface", "syncid"}, nil)
	syncRecs   = prometheus.NewDesc("xlb_sync_records_total", "Connection-sync records: sent by the master, or unsendable (no message can carry them: left out); received, installed, stale (ignored as IPVS ignores them), skipped (no such service or real here) and dropped (malformed) by the backup.", []string{"what"}, nil)
	syncMsgs   = prometheus.NewDesc("xlb_sync_messages_total", "Connection-sync datagrams: sent, received, and ignored (other_syncid, malformed).", []string{"what"}, nil)
	syncLast   = prometheus.NewDesc("xlb_sync_last_received_seconds", "Unix time of the last sync message the backup received.", nil, nil)
	syncDump   = prometheus.NewDesc("xlb_sync_dump_received", "1 once this backup has had its master's bulk dump since it started.", nil, nil)
	scrapeErr  = prometheus.NewDesc("xlb_scrape_error", "1 when the director's state could not be read for this scrape.", nil, nil)
)

// Collector reads the director's status on each scrape.
type Collector struct {
	Status func() (control.Status, error)
}

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{svcPackets, svcBytes, svcConns, svcQuorum, svcStandby, realPackets, realBytes, realConns,
		realOutPkts, realOutBytes, realActive, realInactive, realHealthy, realWeight, realEffWt, dpInfo, dpApplyOK, dpNextHop, vrrpState, vrrpPrio, vrrpDrops, scrapeErr,
		bgpPeerUp, bgpVIP, syncUp, syncRecs, syncMsgs, syncLast, syncDump, defMode, defEngaged, defRate, defRoom, defThresh, dpFlows, defDropped, dpReasons} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.Status()
	ch <- prometheus.MustNewConstMetric(scrapeErr, prometheus.GaugeValue, b2f(err != nil))
	if err != nil {
		return
	}
	for name, mode := range st.Interfaces {
		ch <- prometheus.MustNewConstMetric(dpInfo, prometheus.GaugeValue, 1, st.Dataplane, name, mode)
	}
	ch <- prometheus.MustNewConstMetric(dpApplyOK, prometheus.GaugeValue, b2f(st.LastError == ""))
	ch <- prometheus.MustNewConstMetric(dpNextHop, prometheus.CounterValue, float64(st.NextHopChanges))
	for reason, n := range st.Reasons {
		ch <- prometheus.MustNewConstMetric(dpReasons, prometheus.CounterValue, float64(n), reason)
	}
	if d := st.Defence; d != nil && d.Error == "" {
		for _, s := range []struct {
			name string
			mode int
			on   bool
		}{{"drop_entry", d.DropEntry, d.DropEntryOn}, {"drop_packet", d.DropPacket, d.DropRate != 0}, {"secure_tcp", d.SecureTCP, d.SecureTCPOn}} {
			ch <- prometheus.MustNewConstMetric(defMode, prometheus.GaugeValue, float64(s.mode), s.name)
			ch <- prometheus.MustNewConstMetric(defEngaged, prometheus.GaugeValue, b2f(s.on), s.name)
		}
		ch <- prometheus.MustNewConstMetric(defRate, prometheus.GaugeValue, float64(d.DropRate))
		ch <- prometheus.MustNewConstMetric(defRoom, prometheus.GaugeValue, float64(d.Room), d.RoomUnit)
		ch <- prometheus.MustNewConstMetric(defThresh, prometheus.GaugeValue, float64(d.Threshold), d.RoomUnit)
		if d.MaxFlows != 0 {
			ch <- prometheus.MustNewConstMetric(dpFlows, prometheus.GaugeValue, float64(d.Flows), "flows", "used")
			ch <- prometheus.MustNewConstMetric(dpFlows, prometheus.GaugeValue, float64(d.MaxFlows), "flows", "size")
			ch <- prometheus.MustNewConstMetric(dpFlows, prometheus.GaugeValue, float64(d.HalfOpen), "half_open", "used")
			ch <- prometheus.MustNewConstMetric(dpFlows, prometheus.GaugeValue, float64(d.MaxHalfOpen), "half_open", "size")
			ch <- prometheus.MustNewConstMetric(defDropped, prometheus.CounterValue, float64(d.Dropped))
		}
	}
	for _, s := range st.Services {
		sl := []string{s.Protocol, s.Addr, strconv.Itoa(int(s.Port))}
		ch <- prometheus.MustNewConstMetric(svcPackets, prometheus.CounterValue, float64(s.Counters.Packets), sl...)
		ch <- prometheus.MustNewConstMetric(svcBytes, prometheus.CounterValue, float64(s.Counters.Bytes), sl...)
		ch <- prometheus.MustNewConstMetric(svcConns, prometheus.CounterValue, float64(s.Counters.Conns), sl...)
		ch <- prometheus.MustNewConstMetric(svcQuorum, prometheus.GaugeValue, b2f(s.QuorumUp), sl...)
		ch <- prometheus.MustNewConstMetric(svcStandby, prometheus.GaugeValue, b2f(s.Standby), sl...)
		for _, r := range s.Reals {
			rl := append(sl[:3:3], fmt.Sprintf("%s:%d", r.Addr, r.Port))
			ch <- prometheus.MustNewConstMetric(realPackets, prometheus.CounterValue, float64(r.Counters.Packets), rl...)
			ch <- prometheus.MustNewConstMetric(realBytes, prometheus.CounterValue, float64(r.Counters.Bytes), rl...)
			ch <- prometheus.MustNewConstMetric(realConns, prometheus.CounterValue, float64(r.Counters.Conns), rl...)
			ch <- prometheus.MustNewConstMetric(realOutPkts, prometheus.CounterValue, float64(r.Counters.OutPackets), rl...)
			ch <- prometheus.MustNewConstMetric(realOutBytes, prometheus.CounterValue, float64(r.Counters.OutBytes), rl...)
			ch <- prometheus.MustNewConstMetric(realActive, prometheus.GaugeValue, float64(r.ActiveConns), rl...)
			ch <- prometheus.MustNewConstMetric(realInactive, prometheus.GaugeValue, float64(r.InactConns), rl...)
			ch <- prometheus.MustNewConstMetric(realHealthy, prometheus.GaugeValue, b2f(r.Healthy), rl...)
			ch <- prometheus.MustNewConstMetric(realWeight, prometheus.GaugeValue, float64(r.Weight), rl...)
			ch <- prometheus.MustNewConstMetric(realEffWt, prometheus.GaugeValue, float64(r.EffectiveWeight), rl...)
		}
	}
	for _, v := range st.VRRP {
		vrid := strconv.Itoa(int(v.VRID))
		for _, state := range []string{"MASTER", "BACKUP", "FAULT", "INIT"} {
			ch <- prometheus.MustNewConstMetric(vrrpState, prometheus.GaugeValue, b2f(v.State == state), v.Name, v.Interface, vrid, state)
		}
		ch <- prometheus.MustNewConstMetric(vrrpPrio, prometheus.GaugeValue, float64(v.Priority), v.Name, v.Interface, vrid)
		for reason, n := range v.Dropped {
			ch <- prometheus.MustNewConstMetric(vrrpDrops, prometheus.CounterValue, float64(n), v.Name, v.Interface, vrid, reason)
		}
	}
	if b := st.BGP; b != nil {
		for _, p := range b.Peers {
			ch <- prometheus.MustNewConstMetric(bgpPeerUp, prometheus.GaugeValue, b2f(p.State == "established"), p.Addr)
		}
		for _, v := range b.VIPs {
			ch <- prometheus.MustNewConstMetric(bgpVIP, prometheus.GaugeValue, b2f(v.Announced), v.VIP)
		}
	}
	if sy := st.Sync; sy != nil {
		for _, d := range sy.Daemons {
			ch <- prometheus.MustNewConstMetric(syncUp, prometheus.GaugeValue, 1, d.Role, d.Interface, strconv.Itoa(int(d.SyncID)))
		}
		if x := sy.Stats; x != nil {
			for what, n := range map[string]uint64{"sent": x.SentRecords, "received": x.ReceivedRecords, "installed": x.Installed,
				"unsendable": x.Unsendable, "stale": x.Stale, "skipped": x.Skipped, "dropped": x.Dropped} {
				ch <- prometheus.MustNewConstMetric(syncRecs, prometheus.CounterValue, float64(n), what)
			}
			for what, n := range map[string]uint64{"sent": x.SentMessages, "received": x.ReceivedMessages, "send_errors": x.SendErrors,
				"other_syncid": x.OtherSyncID, "malformed": x.Malformed} {
				ch <- prometheus.MustNewConstMetric(syncMsgs, prometheus.CounterValue, float64(n), what)
			}
			if !x.LastReceived.IsZero() {
				ch <- prometheus.MustNewConstMetric(syncLast, prometheus.GaugeValue, float64(x.LastReceived.UnixNano())/1e9)
			}
			ch <- prometheus.MustNewConstMetric(syncDump, prometheus.GaugeValue, b2f(!x.DumpReceived.IsZero()))
		}
	}
}

// Handler serves the collector (and Go's process metrics) in the
// Prometheus text format.
func Handler(c *Collector, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)})
}
