package metrics

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/control"
)

// scrape serves c as `xlb run --metrics` does and reads it back with
// Prometheus' parser.
func scrape(t *testing.T, c *Collector) testutil.Metrics {
	t.Helper()
	srv := httptest.NewServer(Handler(c, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	m, err := testutil.Scrape(srv.Client(), srv.URL)
	require.NoError(t, err)
	return m
}

// Each series carries its own field of the status, under the labels an
// operator filters by: every field below has a value no other has, so a
// series wired to the wrong field (a reply counter for a forward one,
// the configured weight for the effective one) reads wrong.
func TestSeriesFollowStatus(t *testing.T) {
	st := control.Status{
		Dataplane: "xdp", Interfaces: map[string]string{"eth0": "native"},
		Services: []control.Service{{
			Protocol: "TCP", Addr: "10.77.1.100", Port: 80, Scheduler: "wrr", Quorum: 3, QuorumUp: false, Standby: true,
			Counters: control.Counters{Packets: 101, Bytes: 102, Conns: 103},
			Reals: []control.Real{
				{Addr: "10.77.0.11", Port: 8080, Weight: 5, EffectiveWeight: 4, Healthy: true, InService: true,
					ActiveConns: 7, InactConns: 8, Counters: control.Counters{Packets: 201, Bytes: 202, Conns: 203, OutPackets: 204, OutBytes: 205}},
				{Addr: "10.77.0.12", Port: 8080, Weight: 2, EffectiveWeight: 0, Healthy: false,
					Counters: control.Counters{Packets: 301, Bytes: 302}},
			},
		}, {
			Protocol: "UDP", Addr: "10.77.1.101", Port: 53, Scheduler: "rr", QuorumUp: true,
			Counters: control.Counters{Packets: 401, Bytes: 402, Conns: 403},
		}},
		VRRP: []control.VRRPInstance{
			{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 130, State: "MASTER"},
			{Name: "VI_2", Interface: "eth1", VRID: 52, Priority: 90, State: "BACKUP", Dropped: map[string]uint64{"auth_pass": 6}},
		},
		BGP: &control.BGP{AS: 65001,
			Peers: []control.BGPPeer{{Addr: "10.77.0.254", State: "established"}, {Addr: "10.77.0.253", State: "active"}},
			VIPs:  []control.BGPVIP{{VIP: "10.77.1.100", Announced: true}, {VIP: "10.77.1.101", Reason: "a service of the VIP has lost quorum"}}},
		Sync: &control.Sync{Daemons: []control.SyncDaemon{{Role: "master", Interface: "eth1", SyncID: 51}, {Role: "backup", Interface: "eth1", SyncID: 51}},
			Stats: &control.SyncStats{SentRecords: 11, SentMessages: 2, ReceivedRecords: 12, Installed: 9, Stale: 1, Skipped: 2, OtherSyncID: 3,
				LastReceived: time.Unix(1700000000, 500000000), DumpReceived: time.Unix(1700000000, 0)}},
	}
	m := scrape(t, &Collector{Status: func() (control.Status, error) { return st, nil }})
	val := func(name string, labels ...string) float64 {
		t.Helper()
		v, err := m.Get(name, labels...)
		require.NoError(t, err)
		return v
	}
	svc := []string{"protocol", "TCP", "vip", "10.77.1.100", "port", "80"}
	udp := []string{"protocol", "UDP", "vip", "10.77.1.101", "port", "53"}
	r1 := append(svc[:6:6], "real", "10.77.0.11:8080")
	r2 := append(svc[:6:6], "real", "10.77.0.12:8080")

	assert.EqualValues(t, 0, val("xlb_scrape_error"))
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"xlb_service_packets_total", svc, 101}, {"xlb_service_bytes_total", svc, 102}, {"xlb_service_connections_total", svc, 103},
		{"xlb_service_quorum_up", svc, 0}, {"xlb_service_standby", svc, 1},
		{"xlb_service_packets_total", udp, 401}, {"xlb_service_bytes_total", udp, 402},
		{"xlb_service_quorum_up", udp, 1}, {"xlb_service_standby", udp, 0},

		{"xlb_real_packets_total", r1, 201}, {"xlb_real_bytes_total", r1, 202}, {"xlb_real_connections_total", r1, 203},
		{"xlb_real_reply_packets_total", r1, 204}, {"xlb_real_reply_bytes_total", r1, 205},
		{"xlb_real_active_connections", r1, 7}, {"xlb_real_inactive_connections", r1, 8},
		{"xlb_real_weight", r1, 5}, {"xlb_real_effective_weight", r1, 4}, {"xlb_real_healthy", r1, 1},
		{"xlb_real_packets_total", r2, 301}, {"xlb_real_bytes_total", r2, 302},
		{"xlb_real_weight", r2, 2}, {"xlb_real_effective_weight", r2, 0}, {"xlb_real_healthy", r2, 0},

		{"xlb_vrrp_state", []string{"instance", "VI_1", "interface", "eth0", "vrid", "51", "state", "MASTER"}, 1},
		{"xlb_vrrp_state", []string{"instance", "VI_1", "state", "BACKUP"}, 0},
		{"xlb_vrrp_state", []string{"instance", "VI_1", "state", "FAULT"}, 0},
		{"xlb_vrrp_state", []string{"instance", "VI_1", "state", "INIT"}, 0},
		{"xlb_vrrp_state", []string{"instance", "VI_2", "interface", "eth1", "vrid", "52", "state", "BACKUP"}, 1},
		{"xlb_vrrp_state", []string{"instance", "VI_2", "state", "MASTER"}, 0},
		{"xlb_vrrp_effective_priority", []string{"instance", "VI_1", "interface", "eth0", "vrid", "51"}, 130},
		{"xlb_vrrp_effective_priority", []string{"instance", "VI_2", "interface", "eth1", "vrid", "52"}, 90},
		{"xlb_vrrp_adverts_dropped_total", []string{"instance", "VI_2", "reason", "auth_pass"}, 6},

		{"xlb_bgp_peer_up", []string{"peer", "10.77.0.254"}, 1}, {"xlb_bgp_peer_up", []string{"peer", "10.77.0.253"}, 0},
		{"xlb_bgp_vip_announced", []string{"vip", "10.77.1.100"}, 1}, {"xlb_bgp_vip_announced", []string{"vip", "10.77.1.101"}, 0},

		{"xlb_sync_daemon_up", []string{"role", "master", "interface", "eth1", "syncid", "51"}, 1},
		{"xlb_sync_daemon_up", []string{"role", "backup", "interface", "eth1", "syncid", "51"}, 1},
		{"xlb_sync_records_total", []string{"what", "sent"}, 11}, {"xlb_sync_records_total", []string{"what", "received"}, 12},
		{"xlb_sync_records_total", []string{"what", "installed"}, 9}, {"xlb_sync_records_total", []string{"what", "stale"}, 1},
		{"xlb_sync_records_total", []string{"what", "skipped"}, 2}, {"xlb_sync_messages_total", []string{"what", "other_syncid"}, 3},
		{"xlb_sync_messages_total", []string{"what", "sent"}, 2},
		{"xlb_sync_last_received_seconds", nil, 1700000000.5}, {"xlb_sync_dump_received", nil, 1},

		{"xlb_dataplane_info", []string{"dataplane", "xdp", "interface", "eth0", "mode", "native"}, 1},
		{"xlb_dataplane_apply_ok", nil, 1},
	} {
		assert.Equal(t, c.want, val(c.name, c.labels...), "%s%v", c.name, c.labels)
	}
	assert.Len(t, m["xlb_vrrp_state"], 8, "one series per instance and state")
	assert.Len(t, m["xlb_real_packets_total"], 2, "a service without reals has no real series")

	// The apply failure an operator alerts on.
	st.LastError = "map full"
	assert.EqualValues(t, 0, func() float64 {
		v, err := scrape(t, &Collector{Status: func() (control.Status, error) { return st, nil }}).Get("xlb_dataplane_apply_ok")
		require.NoError(t, err)
		return v
	}())
}

// A status the daemon cannot read is a scrape error, not a scrape of
// zeros that would look like a director with nothing to do.
func TestScrapeError(t *testing.T) {
	m := scrape(t, &Collector{Status: func() (control.Status, error) { return control.Status{}, errors.New("read data plane counters: EPERM") }})
	v, err := m.Get("xlb_scrape_error")
	require.NoError(t, err)
	assert.EqualValues(t, 1, v)
	for _, name := range []string{"xlb_service_packets_total", "xlb_real_effective_weight", "xlb_vrrp_state", "xlb_dataplane_apply_ok"} {
		assert.Empty(t, m[name], name)
	}
}

// The metrics pass Prometheus' own linter (names, units, help, counter
// suffixes), with every kind of series present.
func TestMetricsLint(t *testing.T) {
	st := control.Status{
		Dataplane: "xdp", Interfaces: map[string]string{"eth0": "native"}, Reasons: map[string]uint64{"not_vip": 1},
		Defence: &control.Defence{MaxFlows: 10, RoomUnit: "flows"},
		Services: []control.Service{{Protocol: "TCP", Addr: "10.0.0.1", Port: 80,
			Reals: []control.Real{{Addr: "10.0.0.2", Port: 80}}}},
		VRRP: []control.VRRPInstance{{Name: "VI_1", Interface: "eth0", VRID: 1, State: "MASTER", Dropped: map[string]uint64{"ttl": 1}}},
	}
	srv := httptest.NewServer(Handler(&Collector{Status: func() (control.Status, error) { return st, nil }}, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	problems, err := promlint.New(resp.Body).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems)
}
