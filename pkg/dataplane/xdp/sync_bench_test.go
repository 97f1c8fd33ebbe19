package xdp

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/ipvssync"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/syncd"
)

// syncBenchPair is syncPair's two data planes sized for flows flows (the
// LRU's entries are spread over the CPUs' lists, and the updates come
// from one CPU at a time), with one DR service of 16 reals.
func syncBenchPair(b *testing.B, flows int) (nsA, nsB *testutil.NS, a, bb *Dataplane, svc dataplane.Service) {
	requireRoot(b)
	nsA, _ = testNS(b)
	nsB, _ = testNS(b)
	require.NoError(b, nsA.IP("link", "add", "sync0", "type", "veth", "peer", "name", "sync0", "netns", nsB.Name))
	for i, ns := range []*testutil.NS{nsA, nsB} {
		require.NoError(b, ns.IP("addr", "add", netip.AddrFrom4([4]byte{10, 99, 0, byte(1 + i)}).String()+"/24", "dev", "sync0"))
		require.NoError(b, ns.IP("link", "set", "sync0", "up"))
	}
	res := staticResolver{}
	svc = dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "wlc"}
	for i := 1; i <= 16; i++ {
		res[realAddr(i)] = NextHop{Ifindex: 1, MAC: realMAC(i), SrcMAC: srcMAC}
		svc.Reals = append(svc.Reals, dataplane.Real{Addr: realAddr(i), Port: 80, Weight: 1, Forward: lvs.DR})
	}
	maxConns := uint32(max(flows, 4096))
	open := func(ns *testutil.NS) *Dataplane {
		var x *Dataplane
		require.NoError(b, ns.Do(func() (err error) {
			x, err = Open(Config{PinDir: "/sys/fs/bpf/xlb-syncb-" + testutil.Suffix(), Resolver: res, MaxConns: maxConns,
				MaxHalfOpen: 4096, Logger: quiet, SweepInterval: time.Hour})
			return err
		}))
		b.Cleanup(func() { x.Close() })
		apply(b, ns, x, svc)
		return x
	}
	return nsA, nsB, open(nsA), open(nsB), svc
}

// fillFlows writes n established flows into x's table as the program
// would have made them, spread over the service's reals.
func fillFlows(b *testing.B, x *Dataplane, svc dataplane.Service, n int) {
	var slots, gens []uint32
	st := x.state.services[svc.ServiceKey]
	for _, r := range st.reals {
		slots, gens = append(slots, r.slot), append(gens, x.state.realGen[r.slot])
	}
	now := monotonicNow()
	keys, vals := make([]xlbConnKey, n), make([]xlbConn, n)
	for i := range n {
		keys[i] = xlbConnKey{Src: ip4(netip.AddrFrom4([4]byte{10, 100, byte(i >> 16), byte(i >> 8)})), Dst: ip4(vip),
			Sport: port16(uint16(i)), Dport: port16(80), Proto: 6}
		vals[i] = xlbConn{Real: slots[i%len(slots)], Gen: gens[i%len(gens)], LastSeen: now, TimeoutS: 900, State: 1, Svc: st.idx}
	}
	for i := 0; i < n; i += 65536 {
		j := min(i+65536, n)
		require.NoError(b, x.flows4().fill(keys[i:j], vals[i:j]))
	}
}

// BenchmarkSync measures connection sync on the XDP data plane:
//
//   - install: a backup decoding and installing records from wire
//     messages (a full 1472-byte message holds 40 IPv4 records);
//   - master-pass: a master's pass over a table of 100k flows (read,
//     batched, encoded), per flow;
//   - lag-0k, lag-100k: a new flow on the master (its SYN and ACK
//     through the program) until it is in the backup's table, with a
//     table of that many other flows on the master;
//   - dump-100k, dump-1M: a backup that starts next to a master holding
//     that many flows, from its start (the dump request) to the last
//     flow installed, over a veth; every flow must arrive (a pass that
//     overlaps the dump may send some twice).
//
// The master reads the map, not packets: the program is unchanged and a
// packet costs what it cost before (BenchmarkDR).
func BenchmarkSync(b *testing.B) {
	b.Run("install", func(b *testing.B) {
		const flows = 100000
		_, _, _, x, svc := syncBenchPair(b, flows)
		var conns []ipvssync.Conn
		for i := range flows {
			conns = append(conns, ipvssync.Conn{Protocol: 6, State: ipvssync.TCPEstablished, Flags: ipvssync.DRoute,
				Client:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 100, byte(i >> 16), byte(i >> 8)}), uint16(i)),
				Virtual: netip.AddrPortFrom(vip, 80), Dest: netip.AddrPortFrom(svc.Reals[i%16].Addr, 80), Timeout: 900 * time.Second})
		}
		msgs, err := ipvssync.Batch(1, conns, ipvssync.DefaultMaxLen)
		require.NoError(b, err)
		wire := make([][]byte, len(msgs))
		for i, m := range msgs {
			wire[i], err = m.MarshalBinary()
			require.NoError(b, err)
		}
		b.ResetTimer()
		start := time.Now()
		records := 0
		for i := range b.N {
			var m ipvssync.Message
			require.NoError(b, m.UnmarshalBinary(wire[i%len(wire)]))
			res, err := x.SyncInstall(m.Conns)
			require.NoError(b, err)
			require.Equal(b, len(m.Conns), res.Installed)
			records += len(m.Conns)
		}
		el := time.Since(start)
		b.ReportMetric(float64(el.Nanoseconds())/float64(records), "ns/record")
		b.ReportMetric(float64(records)/el.Seconds(), "records/s")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("master-pass", func(b *testing.B) {
		const flows = 100000
		_, _, x, _, svc := syncBenchPair(b, flows)
		fillFlows(b, x, svc, flows)
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			out := make([]ipvssync.Conn, 0, flows)
			require.NoError(b, x.SyncRecords(func(r syncd.Record) { out = append(out, r.Conn) }))
			require.Len(b, out, flows)
			msgs, err := ipvssync.Batch(1, out, ipvssync.DefaultMaxLen)
			require.NoError(b, err)
			for _, m := range msgs {
				_, err := m.MarshalBinary()
				require.NoError(b, err)
			}
		}
		el := time.Since(start)
		b.ReportMetric(float64(el.Nanoseconds())/float64(b.N*flows), "ns/flow")
		b.ReportMetric(0, "ns/op")
	})
	for _, flows := range []int{0, 100000} {
		b.Run(fmt.Sprintf("lag-%dk", flows/1000), func(b *testing.B) {
			nsA, nsB, a, x, svc := syncBenchPair(b, max(flows, 1000))
			fillFlows(b, a, svc, flows)
			startSync(b, nsA, a, dataplane.SyncDaemon{SyncID: 1})
			startSync(b, nsB, x, dataplane.SyncDaemon{Backup: true, SyncID: 1})
			for x.SyncStats().DumpReceived.IsZero() || x.SyncStats().Installed < uint64(flows) {
				time.Sleep(10 * time.Millisecond)
			}
			var lags []time.Duration
			b.ResetTimer()
			for i := range b.N {
				sport := uint16(50000 + i)
				start := time.Now()
				for _, fl := range []uint8{testutil.TCPSyn, testutil.TCPAck} {
					v, _ := run(b, nsA, a, tcpFrame(client, sport, fl))
					require.EqualValues(b, xdpTX, v)
				}
				key := xlbConnKey{Src: ip4(client), Dst: ip4(vip), Sport: port16(sport), Dport: port16(80), Proto: 6}
				var c xlbConn
				deadline := start.Add(10 * time.Second)
				for x.flows4().Lookup(&key, &c) != nil {
					require.True(b, time.Now().Before(deadline), "flow %d never reached the backup", i)
					time.Sleep(time.Millisecond)
				}
				lags = append(lags, time.Since(start))
			}
			slices.Sort(lags)
			b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "ms-median")
			b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "ms-max")
			b.ReportMetric(0, "ns/op")
		})
	}
	for _, flows := range []int{100000, 1000000} {
		b.Run(fmt.Sprintf("dump-%dk", flows/1000), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				b.StopTimer()
				nsA, nsB, a, x, svc := syncBenchPair(b, flows)
				fillFlows(b, a, svc, flows)
				startSync(b, nsA, a, dataplane.SyncDaemon{SyncID: 1})
				// The master's first pass (which no backup hears) is over.
				for a.SyncStats().SentRecords < uint64(flows) {
					time.Sleep(10 * time.Millisecond)
				}
				b.StartTimer()
				start := time.Now()
				startSync(b, nsB, x, dataplane.SyncDaemon{Backup: true, SyncID: 1})
				deadline := time.Now().Add(60 * time.Second)
				for x.SyncStats().Installed < uint64(flows) || x.SyncStats().DumpReceived.IsZero() {
					require.True(b, time.Now().Before(deadline), "dump incomplete after 60 s: %+v", x.SyncStats())
					time.Sleep(5 * time.Millisecond)
				}
				total += time.Since(start)
				b.StopTimer()
				st := x.SyncStats()
				require.GreaterOrEqual(b, st.Installed, uint64(flows), "%+v", st)
				n, err := x.flows4().count()
				require.NoError(b, err)
				require.Equal(b, flows, n, "the backup's table holds every flow")
				require.NoError(b, nsA.Do(func() error { return a.StopDaemon(false) }))
				require.NoError(b, nsB.Do(func() error { return x.StopDaemon(true) }))
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/dump")
			b.ReportMetric(float64(flows)*float64(b.N)/total.Seconds(), "records/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
