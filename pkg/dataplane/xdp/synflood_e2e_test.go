package xdp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
)

// The flood test of issue 19: a SYN flood from spoofed sources, as fast as
// this machine makes one (live frames from the client's namespace, each
// its own source address and port), into a full flow table, while 20
// downloads run through the director. Every download completes intact;
// the real clients' new connections during the flood are counted and their
// success rate printed, with the flood's rate. Twice: a wlc service (every
// new flow is an entry; established flows are kept by the half-open
// table) and an mh service in flood mode (past the rate, new flows go by
// the table alone and need no entry).
func TestSYNFloodDuringDownloads(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		name      string
		sched     string
		floodRate uint32
	}{{"wlc", "wlc", 0}, {"mh-flood-mode", "mh", 2000}} {
		t.Run(c.name, func(t *testing.T) { synFlood(t, c.sched, c.floodRate) })
	}
}

const (
	floodFor      = 2 * time.Second
	floodMaxPkts  = 40_000_000 // a bound on the flood, whatever the machine
	downloads     = 20
	downloadBytes = 24 << 20
	// Each download reads 64 KiB every 8 ms (about 8 MB/s), so that all
	// of them are mid-stream for the whole flood.
	downloadChunk = 64 << 10
	downloadPace  = 8 * time.Millisecond
)

func synFlood(t *testing.T, schedName string, floodRate uint32) {
	r := newDRRig(t, 2, dataplane.XDPNative)
	require.NoError(t, r.x.Close())
	r.floodRate = floodRate
	r.x = r.open(t)
	r.apply(t, r.service(schedName, 1, 1))
	r.waitResolved(t)

	// A full flow table: established flows from other clients on both
	// CPUs (the table is a per-CPU LRU), made through the program.
	st, err := r.x.Defence()
	require.NoError(t, err)
	fillTable(t, r, int(st.MaxFlows))
	require.NoError(t, r.x.Sweep())
	st, err = r.x.Defence()
	require.NoError(t, err)
	require.GreaterOrEqual(t, st.Flows, st.MaxFlows*9/10, "the flow table is full before the flood")
	t.Logf("flow table before the flood: %d of %d flows", st.Flows, st.MaxFlows)

	// The downloads: each on its own connection, read at a steady pace.
	var progress [downloads]atomic.Int64
	errs := make([]error, downloads)
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{DialContext: r.topo.Client.DialContext, DisableKeepAlives: true}}
	for i := range downloads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = download(client, fmt.Sprintf("http://%s/bytes/%d", r.topo.VIP, downloadBytes), &progress[i])
		}()
	}
	require.Eventually(t, func() bool {
		for i := range progress {
			if progress[i].Load() < 1<<20 {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, "every download under way")
	before := reasons(t, r.x)
	connsBefore := svcConns(t, r.x)

	// The flood, and real clients trying new connections through it.
	gen := newFloodGen(t, r)
	var probes, probesOK int
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: r.topo.Client.DialContext, DisableKeepAlives: true}}
		end := time.Now().Add(floodFor)
		for time.Now().Before(end) {
			probes++
			if _, err := testutil.Get(context.Background(), c, "http://"+r.topo.VIP.String()+"/"); err == nil {
				probesOK++
			}
		}
	}()
	mid := [downloads]int64{}
	sent, took := gen.run(t, floodFor)
	<-probeDone
	for i := range progress {
		mid[i] = progress[i].Load()
	}
	during := reasons(t, r.x)
	newFlows := svcConns(t, r.x) - connsBefore
	require.NoError(t, r.x.Sweep())
	st, err = r.x.Defence()
	require.NoError(t, err)

	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "download %d", i)
	}
	delta := map[string]uint64{}
	for k, v := range during {
		if d := v - before[k]; d != 0 {
			delta[k] = d
		}
	}
	t.Logf("%s: flood of %d SYNs in %v (%.2f Mpps offered); real clients' new connections during it: %d of %d (%.1f%%); downloads: all %d complete (%d MiB each); director: %d new flows, %v; after the flood: %d flows of %d, %d half-open of %d",
		schedName, sent, took.Round(time.Millisecond), float64(sent)/took.Seconds()/1e6, probesOK, probes, 100*float64(probesOK)/float64(max(probes, 1)),
		downloads, downloadBytes>>20, newFlows, delta, st.Flows, st.MaxFlows, st.HalfOpen, st.MaxHalfOpen)
	for i := range mid {
		assert.Less(t, mid[i], int64(downloadBytes), "download %d was still running when the flood ended", i)
	}
	if floodRate != 0 {
		assert.NotZero(t, delta["flood_stateless"], "flood mode took the flood past its rate")
	} else {
		assert.Greater(t, newFlows, uint64(100_000), "the flood's SYNs became new flows")
	}
}

// svcConns is the new connections the data plane's one service counted.
func svcConns(t *testing.T, x *Dataplane) uint64 {
	t.Helper()
	st, err := x.Stats()
	require.NoError(t, err)
	require.Len(t, st.Services, 1)
	return st.Services[0].Conns
}

// download fetches url, reading at the test's pace, and checks every byte.
func download(c *http.Client, url string, progress *atomic.Int64) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	want := testutil.Pattern()
	got, exp := make([]byte, downloadChunk), make([]byte, downloadChunk)
	var n int64
	for {
		k, err := io.ReadFull(resp.Body, got)
		if k > 0 {
			if _, err := io.ReadFull(want, exp[:k]); err != nil {
				return err
			}
			if !bytes.Equal(got[:k], exp[:k]) {
				return fmt.Errorf("byte %d on: not what was sent", n)
			}
			n += int64(k)
			progress.Store(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", n, err)
		}
		time.Sleep(downloadPace)
	}
	if n != downloadBytes {
		return fmt.Errorf("%d bytes of %d", n, downloadBytes)
	}
	return nil
}

// fillTable makes n established flows (a SYN, then the client's ACK) from
// sources of their own, half on each CPU.
func fillTable(t *testing.T, r *drRig, n int) {
	t.Helper()
	cpus := ebpf.MustPossibleCPU()
	for cpu := range cpus {
		require.NoError(t, r.topo.Director.Do(func() error {
			var was, one unix.CPUSet
			if err := unix.SchedGetaffinity(0, &was); err != nil {
				return err
			}
			one.Set(cpu)
			if err := unix.SchedSetaffinity(0, &one); err != nil {
				return err
			}
			defer unix.SchedSetaffinity(0, &was)
			out := make([]byte, 256)
			for i := cpu; i < n; i += cpus {
				src := netip.AddrFrom4([4]byte{198, 20, byte(i >> 8), byte(i)})
				for _, flags := range []uint8{testutil.TCPSyn, testutil.TCPAck} {
					f := testutil.Frame{SrcMAC: srcMAC, DstMAC: srcMAC, Src: src, Dst: r.topo.VIP, Proto: 6,
						SrcPort: 30000, DstPort: 80, TCPFlags: flags}
					v, err := r.x.objs.XlbXdp.Run(&ebpf.RunOptions{Data: f.Bytes(), DataOut: out})
					if err != nil {
						return err
					}
					// Forwarded: out of the interface it came in on, or
					// redirected (test runs name no ingress interface).
					if v != xdpTX && v != xdpRedirect {
						return fmt.Errorf("flow %d: verdict %d", i, v)
					}
				}
			}
			return nil
		}))
	}
}

// floodGen sends SYNs from the client's namespace out of its eth0 to the
// director, each from its own source (198.18.0.0/16 and a port).
type floodGen struct {
	r     *drRig
	bench benchObjects
	inIdx int
	frame []byte
}

func newFloodGen(t *testing.T, r *drRig) *floodGen {
	t.Helper()
	c := r.topo.Client
	// Live frames are injected as received on fl0; bench_redirect sends
	// them out of eth0. A redirect into a veth needs GRO on its peer.
	require.NoError(t, c.IP("link", "add", "fl0", "type", "veth", "peer", "name", "fl1"))
	require.NoError(t, c.IP("link", "set", "fl0", "up"))
	require.NoError(t, c.IP("link", "set", "fl1", "up"))
	require.NoError(t, r.topo.Switch.Exec("ethtool", "-K", "p-client", "gro", "on"))
	g := &floodGen{r: r}
	require.NoError(t, loadBenchObjects(&g.bench, nil))
	t.Cleanup(func() { g.bench.Close() })
	var ethIdx int
	var clientMAC, dirMAC net.HardwareAddr
	require.NoError(t, c.Do(func() error {
		fl, err := net.InterfaceByName("fl0")
		if err != nil {
			return err
		}
		eth, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		g.inIdx, ethIdx, clientMAC = fl.Index, eth.Index, eth.HardwareAddr
		return nil
	}))
	require.NoError(t, r.topo.Director.Do(func() error {
		eth, err := net.InterfaceByName(r.topo.DirectorIf)
		if err == nil {
			dirMAC = eth.HardwareAddr
		}
		return err
	}))
	// A devmap takes its device by index in the namespace of the
	// process that writes it: the client's eth0 must be written from
	// the client's namespace, never from the test's.
	zero, out := uint32(0), uint32(ethIdx)
	require.NoError(t, c.Do(func() error { return g.bench.BenchOut.Update(&zero, &out, ebpf.UpdateAny) }))
	g.frame = testutil.Frame{SrcMAC: clientMAC, DstMAC: dirMAC, Src: netip.MustParseAddr("198.18.0.0"), Dst: r.topo.VIP,
		Proto: 6, SrcPort: 1, DstPort: 80, TCPFlags: testutil.TCPSyn, Payload: make([]byte, 10)}.Bytes()
	var tmpl benchBenchTmpl
	copy(tmpl.Data[:], g.frame)
	tmpl.Flows = 1 << 24 // 256 addresses of 65536 ports
	require.NoError(t, g.bench.BenchTmpls.Update(&zero, &tmpl, ebpf.UpdateAny))
	return g
}

// run floods for d (and at most floodMaxPkts frames): the frames handed to
// the client's eth0, and how long it took.
func (g *floodGen) run(t *testing.T, d time.Duration) (uint64, time.Duration) {
	t.Helper()
	const batch = 250_000
	var sent uint64
	start := time.Now()
	require.NoError(t, g.r.topo.Client.Do(func() error {
		for time.Since(start) < d && sent < floodMaxPkts {
			_, err := g.bench.BenchRedirect.Run(&ebpf.RunOptions{
				Data:    g.frame,
				Repeat:  batch,
				Flags:   0x2, // BPF_F_TEST_XDP_LIVE_FRAMES
				Context: xdpMd{DataEnd: uint32(len(g.frame)), IngressIfindex: uint32(g.inIdx)},
			})
			if err != nil {
				return err
			}
			sent += batch
		}
		return nil
	}))
	return sent, time.Since(start)
}
