package ipvssync

import (
	"bufio"
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// golden is one payload of testdata/golden.txt.
type golden struct {
	name    string
	version int
	payload []byte
}

func readGolden(t *testing.T) map[string]golden {
	t.Helper()
	f, err := os.Open("testdata/golden.txt")
	require.NoError(t, err)
	defer f.Close()

	out := map[string]golden{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		require.Len(t, fields, 3, "line %q", line)
		g := golden{name: fields[0], version: Version1, payload: mustHex(t, fields[2])}
		if fields[1] == "v0" {
			g.version = Version0
		}
		out[g.name] = g
	}
	require.NoError(t, sc.Err())
	require.Len(t, out, 5)
	return out
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

// The test bed of the captures (testdata/golden.txt).
const (
	clientAddr = "192.168.1.2"
	vipAddr    = "192.168.1.1"
	realAddr   = "10.0.1.2"
)

func ap(addr string, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(addr), port)
}

// tcp is a NAT TCP connection of the test bed: client port, then virtual
// port 80 or 81 to real port 8080 or 8081.
func tcp(cport, vport uint16, flags uint32, state uint16, timeout time.Duration) Conn {
	return Conn{
		Protocol: ProtocolTCP, Flags: flags, State: state,
		Client: ap(clientAddr, cport), Virtual: ap(vipAddr, vport), Dest: ap(realAddr, 8000+vport),
		Timeout: timeout,
	}
}

// tpl is the template of the persistent service on port 81 (-p 120).
func tpl(state uint16) Conn {
	return tcp(0, 81, Template|Inactive, state, 120*time.Second)
}

// goldenConns is what each capture holds, read off the topology and the
// order of events in the capture notes.
var goldenConns = map[string][]Conn{
	"pkt1": {
		tpl(TemplateNone), tpl(TemplateAssured),
		tcp(43326, 80, Masq, TCPEstablished, 900*time.Second),
		tcp(58922, 81, Masq, TCPEstablished, 900*time.Second),
		tpl(TemplateAssured), tpl(TemplateAssured), tpl(TemplateAssured),
		tpl(TemplateAssured), tpl(TemplateAssured), tpl(TemplateAssured),
		{
			Protocol: ProtocolUDP, Flags: Inactive, State: UDPNormal,
			Client: ap(clientAddr, 32854), Virtual: ap(vipAddr, 53), Dest: ap(realAddr, 5353),
			Timeout: 300 * time.Second,
		},
		tpl(TemplateAssured), tpl(TemplateAssured), tpl(TemplateAssured), tpl(TemplateAssured),
	},
	"pkt2": {
		tcp(58922, 81, Inactive, TCPCloseWait, 60*time.Second),
		tpl(TemplateAssured),
		tcp(58922, 81, Inactive, TCPTimeWait, 120*time.Second),
		tpl(TemplateAssured),
		tcp(43326, 80, Inactive, TCPCloseWait, 60*time.Second),
		tcp(43326, 80, Inactive, TCPTimeWait, 120*time.Second),
	},
	// Version 0 has no timeout.
	"pkt3": {
		tcp(42270, 80, Masq, TCPEstablished, 0),
	},
	"pkt4": {
		tcp(42270, 80, Inactive, TCPCloseWait, 0),
		tcp(42270, 80, Inactive, TCPTimeWait, 0),
	},
	"pkt5": {
		tcp(34324, 80, Masq, TCPEstablished, 900*time.Second),
		tcp(34324, 80, Inactive, TCPCloseWait, 60*time.Second),
		tcp(34324, 80, Inactive, TCPTimeWait, 120*time.Second),
	},
}

// TestGoldenDecode: every captured payload decodes, as the kernel's backup
// read it, to the records the test bed produced, and re-encodes to the bytes
// the kernel sent. The second half is the main proof that the encoder
// speaks the kernel's format, padding and all.
func TestGoldenDecode(t *testing.T) {
	for name, g := range readGolden(t) {
		t.Run(name, func(t *testing.T) {
			var m Message
			require.NoError(t, m.UnmarshalBinary(g.payload))

			assert.Equal(t, g.version, m.Version)
			// pkt5 was sent while the backup ran with --syncid 5, but the
			// master's syncid, in the header, is still 1.
			assert.Equal(t, uint8(1), m.SyncID)
			assert.Empty(t, m.Dropped)
			assert.Equal(t, goldenConns[name], m.Conns)
			assert.Equal(t, len(g.payload), m.Len())

			enc, err := m.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, hex.EncodeToString(g.payload), hex.EncodeToString(enc), "re-encodes byte for byte")
		})
	}
}

// TestGoldenRecords spells out the fields of the records the note
// annotates, so that a regression in one field reads as that field.
func TestGoldenRecords(t *testing.T) {
	gs := readGolden(t)
	decode := func(name string) Message {
		var m Message
		require.NoError(t, m.UnmarshalBinary(gs[name].payload))
		return m
	}

	t.Run("pkt1 header and template", func(t *testing.T) {
		m := decode("pkt1")
		assert.Equal(t, Version1, m.Version)
		require.Len(t, m.Conns, 15)
		assert.Equal(t, 548, m.Len())
		c := m.Conns[0]
		assert.Equal(t, ProtocolTCP, c.Protocol)
		assert.Equal(t, Template|Inactive, c.Flags)
		assert.Equal(t, Masq, c.Flags&FwdMask)
		assert.True(t, c.IsTemplate())
		assert.Equal(t, TemplateNone, c.State)
		assert.Equal(t, ap("192.168.1.2", 0), c.Client)
		assert.Equal(t, ap("192.168.1.1", 81), c.Virtual)
		assert.Equal(t, ap("10.0.1.2", 8081), c.Dest)
		assert.Zero(t, c.FWMark)
		assert.Equal(t, 120*time.Second, c.Timeout)
		assert.Nil(t, c.Seq)
		assert.Empty(t, c.PEName)
		assert.Nil(t, c.PEData)
		assert.Equal(t, TemplateAssured, m.Conns[1].State)
	})
	t.Run("pkt1 UDP", func(t *testing.T) {
		c := decode("pkt1").Conns[10]
		assert.Equal(t, ProtocolUDP, c.Protocol)
		assert.Equal(t, Inactive, c.Flags)
		assert.Equal(t, UDPNormal, c.State)
		assert.Equal(t, "UDP 192.168.1.2:32854 -> 192.168.1.1:53 -> 10.0.1.2:5353", c.String())
		assert.Equal(t, 300*time.Second, c.Timeout)
	})
	t.Run("pkt1 established TCP", func(t *testing.T) {
		m := decode("pkt1")
		for _, i := range []int{2, 3} {
			c := m.Conns[i]
			assert.Equal(t, TCPEstablished, c.State, "conn %d", i)
			assert.Zero(t, c.Flags, "conn %d: MASQ, active", i)
			assert.Equal(t, 900*time.Second, c.Timeout, "conn %d", i)
		}
		assert.Equal(t, uint16(43326), m.Conns[2].Client.Port())
		assert.Equal(t, uint16(80), m.Conns[2].Virtual.Port())
		assert.Equal(t, uint16(58922), m.Conns[3].Client.Port())
		assert.Equal(t, uint16(81), m.Conns[3].Virtual.Port())
	})
	t.Run("pkt3 version 0", func(t *testing.T) {
		m := decode("pkt3")
		assert.Equal(t, Version0, m.Version)
		require.Len(t, m.Conns, 1)
		c := m.Conns[0]
		assert.Equal(t, "TCP 192.168.1.2:42270 -> 192.168.1.1:80 -> 10.0.1.2:8080", c.String())
		assert.Equal(t, TCPEstablished, c.State)
		assert.Zero(t, c.Timeout, "version 0 carries no timeout")
	})
	t.Run("pkt5", func(t *testing.T) {
		m := decode("pkt5")
		assert.Equal(t, uint8(1), m.SyncID, "the backup's --syncid 5 is not in the message")
		require.Len(t, m.Conns, 3)
		assert.Equal(t, []uint16{TCPEstablished, TCPCloseWait, TCPTimeWait},
			[]uint16{m.Conns[0].State, m.Conns[1].State, m.Conns[2].State})
	})
}

// TestGoldenBackupTable: the kernel's backup, after packet 1, listed one
// entry per connection key (ipvsadm -Lnc, /proc/net/ip_vs_conn_sync in the
// capture notes), each with about its record's timeout left. Reducing
// packet 1's records by key, the last record winning, gives that table.
func TestGoldenBackupTable(t *testing.T) {
	var m Message
	require.NoError(t, m.UnmarshalBinary(readGolden(t)["pkt1"].payload))

	type key struct {
		proto           uint8
		client, virtual netip.AddrPort
		template        bool
	}
	table := map[key]Conn{}
	for _, c := range m.Conns {
		table[key{c.Protocol, c.Client, c.Virtual, c.IsTemplate()}] = c
	}

	// pro source virtual destination state expire(s) from the capture.
	want := []struct {
		conn   string
		state  uint16
		expire time.Duration
	}{
		{"TCP 192.168.1.2:0 -> 192.168.1.1:81 -> 10.0.1.2:8081", TemplateAssured, 116 * time.Second},
		{"TCP 192.168.1.2:58922 -> 192.168.1.1:81 -> 10.0.1.2:8081", TCPEstablished, 896 * time.Second},
		{"TCP 192.168.1.2:43326 -> 192.168.1.1:80 -> 10.0.1.2:8080", TCPEstablished, 896 * time.Second},
		{"UDP 192.168.1.2:32854 -> 192.168.1.1:53 -> 10.0.1.2:5353", UDPNormal, 296 * time.Second},
	}
	require.Len(t, table, len(want))
	got := map[string]Conn{}
	for _, c := range table {
		got[c.String()] = c
	}
	for _, w := range want {
		c, ok := got[w.conn]
		if assert.True(t, ok, "backup has %s", w.conn) {
			assert.Equal(t, w.state, c.State, w.conn)
			// listed a few seconds after the record arrived
			assert.InDelta(t, w.expire, c.Timeout, float64(5*time.Second), w.conn)
			assert.Equal(t, Sync|c.Flags&BackupMask, BackupFlags(Version1, c.Flags))
		}
	}
}
