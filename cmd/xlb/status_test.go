package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/control"
)

// mainEnv makes the test binary xlb itself: run again with it set, it runs
// main on its arguments (xlb run ..., as an operator starts it).
const mainEnv = "XLB_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) != "" {
		main()
	}
	os.Exit(m.Run())
}

const statusConfig = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        10.77.1.100/32
    }
}
virtual_server 10.77.1.100 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 10.77.0.11 80 {
        weight 3
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.77.0.12 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
}
`

// xlb status --json against `xlb run` on a keepalived.conf, in a director
// namespace with real servers behind it: the document parses into
// control.Status with no field left over, and says what the director
// does: the data plane and its mode, the service with its reals (weight,
// health, counters of the requests sent) and the VRRP instance, under the
// JSON names a script reads.
func TestStatusJSON(t *testing.T) {
	topo := testutil.NewDRServing(t)
	dir := t.TempDir()
	cfgPath, socket := filepath.Join(dir, "keepalived.conf"), filepath.Join(dir, "xlb.sock")
	require.NoError(t, os.WriteFile(cfgPath, []byte(statusConfig), 0o644))
	pin := "/sys/fs/bpf/xlb-status-" + testutil.Suffix()
	t.Cleanup(func() { os.RemoveAll(pin) })
	cmd := topo.Director.Command(os.Args[0], "run", "-f", cfgPath, "--socket", socket, "--pin-dir", pin,
		"--xlbadm-state", filepath.Join(filepath.Dir(socket), "xlbadm.rules"))
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	xlb := testutil.StartChild(t, cmd)

	status := func() (control.Status, []byte) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run(env{stdout: &out, stderr: &errOut}, []string{"status", "--json", "--socket", socket})
		require.Equal(t, 0, code, "xlb status --json: %s", errOut.String())
		var st control.Status
		dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&st), "%s", out.String())
		return st, out.Bytes()
	}
	ready := func(st control.Status) bool {
		if len(st.VRRP) != 1 || st.VRRP[0].State != "MASTER" || len(st.Services) != 1 || len(st.Services[0].Reals) != 2 {
			return false
		}
		for _, r := range st.Services[0].Reals {
			if !r.Healthy || !r.InService || !r.Resolved {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-xlb.Ended():
			t.Fatalf("xlb run ended: %v", xlb.Err())
		default:
		}
		var errOut bytes.Buffer
		if run(env{stdout: &bytes.Buffer{}, stderr: &errOut}, []string{"status", "--socket", socket}) == 0 {
			if st, _ := status(); ready(st) {
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "xlb run: no MASTER with both reals up within 15 s: %s", errOut.String())
		time.Sleep(100 * time.Millisecond)
	}

	// Eight requests: wrr 3:1.
	c := topo.HTTPClient()
	got := map[string]int{}
	for i := range 8 {
		name, err := testutil.Get(context.Background(), c, "http://10.77.1.100/")
		require.NoError(t, err, "request %d", i)
		got[name]++
	}
	require.Equal(t, map[string]int{"r1": 6, "r2": 2}, got)

	st, raw := status()
	assert.Equal(t, "xdp", st.Dataplane)
	assert.Equal(t, map[string]string{"eth0": "native"}, st.Interfaces)
	assert.Equal(t, cfgPath, st.ConfigFile)
	assert.Empty(t, st.LastError)
	require.Len(t, st.Services, 1)
	s := st.Services[0]
	assert.Equal(t, "TCP 10.77.1.100:80 wrr", fmt.Sprintf("%s %s:%d %s", s.Protocol, s.Addr, s.Port, s.Scheduler))
	assert.True(t, s.QuorumUp)
	assert.False(t, s.Standby, "the MASTER's service forwards")
	assert.EqualValues(t, 8, s.Counters.Conns)
	assert.GreaterOrEqual(t, s.Counters.Packets, uint64(8*4), "SYN, ACK, request and FIN of each at least")
	require.Len(t, s.Reals, 2)
	for i, want := range []struct {
		addr          string
		weight, conns int
	}{{"10.77.0.11", 3, 6}, {"10.77.0.12", 1, 2}} {
		r := s.Reals[i]
		assert.Equal(t, want.addr, r.Addr)
		assert.EqualValues(t, 80, r.Port)
		assert.Equal(t, "DR", r.Forward)
		assert.Equal(t, want.weight, r.Weight)
		assert.Equal(t, want.weight, r.EffectiveWeight)
		assert.True(t, r.Healthy && r.InService && r.Resolved, "%+v", r)
		assert.EqualValues(t, want.conns, r.Counters.Conns, "%s", r.Addr)
	}
	assert.Equal(t, []control.VRRPInstance{{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 100, State: "MASTER"}}, st.VRRP)

	// The names a script reads (jq '.vrrp[0].state', ...).
	var doc struct {
		Services []struct {
			Reals []map[string]any `json:"reals"`
		} `json:"services"`
		VRRP []map[string]any `json:"vrrp"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.Len(t, doc.Services, 1)
	require.Len(t, doc.VRRP, 1)
	assert.Equal(t, "MASTER", doc.VRRP[0]["state"])
	assert.EqualValues(t, 100, doc.VRRP[0]["priority"])
	assert.Equal(t, "10.77.0.11", doc.Services[0].Reals[0]["addr"])
	assert.Equal(t, true, doc.Services[0].Reals[0]["healthy"])
	assert.EqualValues(t, 3, doc.Services[0].Reals[0]["effective_weight"])

	require.NoError(t, xlb.Stop(), "xlb run did not exit 0 on SIGTERM")
}

// The BGP part of xlb status: the speaker, each session (why it is down),
// each VIP announced or why not.
func TestStatusBGP(t *testing.T) {
	since := time.Date(2026, 12, 5, 0, 10, 0, 0, time.Local)
	var out bytes.Buffer
	printStatus(&out, control.Status{Dataplane: "xdp", BGP: &control.BGP{AS: 65001, RouterID: "10.77.0.2",
		Peers: []control.BGPPeer{
			{Addr: "10.77.0.254", State: "established", Since: since},
			{Addr: "10.77.0.253", State: "active", Since: since, Reason: "DISCONNECT_REASON_HOLD_TIMER_EXPIRED hold timer expired"},
		},
		VIPs: []control.BGPVIP{{VIP: "10.77.1.100", Announced: true}, {VIP: "10.77.1.101", Reason: "a service of the VIP has lost quorum"}},
	}})
	assert.Contains(t, out.String(), `
BGP: AS 65001, router id 10.77.0.2
  peer 10.77.0.254 established since 00:10:00
  peer 10.77.0.253 active since 00:10:00 (DISCONNECT_REASON_HOLD_TIMER_EXPIRED hold timer expired)
  10.77.1.100 announced
  10.77.1.101 withdrawn: a service of the VIP has lost quorum
`)
}

// The sync part of xlb status: the daemons as ipvsadm -L --daemon lists
// them, what they did, and the VRRP gate.
func TestStatusSync(t *testing.T) {
	at := time.Date(2026, 12, 5, 0, 10, 0, 0, time.Local)
	var out bytes.Buffer
	printStatus(&out, control.Status{Dataplane: "xdp", Sync: &control.Sync{Configured: true,
		Daemons: []control.SyncDaemon{{Role: "master", Interface: "eth0", SyncID: 51, MaxLen: 1472, Group: "224.0.0.81", Port: 8848, TTL: 1},
			{Role: "backup", Interface: "eth0", SyncID: 51, MaxLen: 1472, Group: "224.0.0.81", Port: 8848, TTL: 1}},
		Stats: &control.SyncStats{SentRecords: 40, SentMessages: 2, Dumps: 1, LastPass: 1500 * time.Microsecond, ReceivedRecords: 30, ReceivedMessages: 3,
			Installed: 27, Stale: 1, Skipped: 2, LastReceived: at, DumpRequested: at.Add(-time.Second), DumpReceived: at.Add(-980 * time.Millisecond)},
		Gate: "preemption allowed: the flow table is current (bulk dump received)",
	}})
	assert.Contains(t, out.String(), `
Connection sync:
  master sync daemon (mcast=eth0, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)
  backup sync daemon (mcast=eth0, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)
  sent 40 records in 2 messages (0 send errors, 1 bulk dumps, 0 records no message can carry); last pass over the flows took 1.5ms
  received 30 records in 3 messages: 27 installed, 1 stale, 2 skipped, 0 dropped; ignored 0 of another syncid, 0 malformed
  last received 00:10:00; bulk dump received 20ms after asking
  VRRP sync gate: preemption allowed: the flow table is current (bulk dump received)
`)
}
