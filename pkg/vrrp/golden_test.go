package vrrp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The keepalived test bed (testdata/README.md).
var (
	nodeA   = mustAddr("192.168.77.2")
	nodeB   = mustAddr("192.168.77.3")
	nodeA6  = mustAddr("fe80::7ca6:90ff:fed9:bfd8")
	vipsFor = map[uint8][]string{
		51: {"192.168.77.100"},
		52: {"192.168.77.110", "192.168.77.111", "192.168.77.112"},
		53: {"192.168.77.120"},
		54: {"fd00:77::100"},
	}
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// captureLocal is the configuration of the instances in a capture, from its
// name: version prefix, VRID 51 unless named, PASS auth for VRID 52, 50 cs
// for VRID 53, unicast peers when named so.
func captureLocal(t *testing.T, name string) Local {
	t.Helper()
	l := Local{Version: Version2, VRID: 51, AdverInt: time.Second}
	if strings.HasPrefix(name, "v3-") {
		l.Version = Version3
	}
	for _, vrid := range []uint8{52, 53, 54} {
		if strings.Contains(name, "vrid"+strconv.Itoa(int(vrid))) {
			l.VRID = vrid
		}
	}
	for _, s := range vipsFor[l.VRID] {
		l.VIPs = append(l.VIPs, mustAddr(s))
	}
	switch l.VRID {
	case 52:
		l.AuthType, l.AuthPass = AuthPass, Password("secret12")
	case 53:
		l.AdverInt = 500 * time.Millisecond
	}
	if strings.Contains(name, "unicast") {
		l.Unicast, l.CheckUnicastSrc = true, true
		l.Peers = []UnicastPeer{{Addr: nodeA}, {Addr: nodeB}}
	}
	return l
}

// TestCapturesValidateAndRoundTrip: every advert in every capture passes
// Validate with the configuration of the test bed and re-encodes to the
// bytes keepalived sent, checksum included.
func TestCapturesValidateAndRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/*.pcap")
	require.NoError(t, err)
	require.Len(t, files, 23)

	total := 0
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".pcap")
		t.Run(name, func(t *testing.T) {
			local := captureLocal(t, name)
			var adverts, v6 int
			for i, p := range readPcap(t, path) {
				if !p.isVRRP() {
					continue
				}
				adverts++
				if p.Src.Is6() {
					v6++
				}
				info := PacketInfo{Src: p.Src, Dst: p.Dst, TTL: p.TTL, PayloadLen: len(p.Payload)}
				adv, err := Validate(p.PayloadEnd, info, local)
				require.NoError(t, err, "packet %d", i)

				assert.Equal(t, local.Version, adv.Version)
				assert.Equal(t, local.VRID, adv.VRID)
				assert.ElementsMatch(t, local.VIPs, adv.Addresses)
				assert.Equal(t, local.AdverInt, adv.Interval())

				enc, err := adv.MarshalBinary()
				require.NoError(t, err)
				assert.Equal(t, p.Payload, enc, "packet %d re-encodes", i)

				// Our sender computes the checksum keepalived computed.
				fresh := adv
				fresh.Checksum = 0
				require.NoError(t, fresh.SetChecksum(p.Src, p.Dst, false))
				assert.Equal(t, adv.Checksum, fresh.Checksum, "packet %d checksum", i)
			}
			switch {
			case strings.HasSuffix(name, "pvC-sees"):
				assert.Zero(t, adverts, "the observer of a unicast pair sees no adverts")
			case strings.Contains(name, "pvC-sees-nothing"):
				assert.Zero(t, v6, "a port outside ff02::12 gets no IPv6 adverts")
				assert.NotZero(t, adverts)
			default:
				assert.NotZero(t, adverts)
			}
			total += adverts
		})
	}
	assert.Greater(t, total, 150)
}

// goldenAdvert is one entry of GOLDEN-vrrp-hex.txt.
type goldenAdvert struct {
	file     string
	src, dst string
	fields   map[string]string // ttl, vrid, prio, naddr, auth, int or maxadvint
	version  uint8
	frame    []byte
	vrrp     []byte
}

func readGolden(t *testing.T) []goldenAdvert {
	t.Helper()
	f, err := os.Open("testdata/GOLDEN-vrrp-hex.txt")
	require.NoError(t, err)
	defer f.Close()

	var out []goldenAdvert
	var cur *goldenAdvert
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		switch {
		case len(fields) > 4 && fields[0] == "#" && strings.HasSuffix(fields[1], ".pcap:") && fields[3] == "->":
			out = append(out, goldenAdvert{
				file:   strings.TrimSuffix(fields[1], ":"),
				src:    fields[2],
				dst:    fields[4],
				fields: map[string]string{},
			})
			cur = &out[len(out)-1]
			for _, kv := range fields[5:] {
				if k, v, ok := strings.Cut(kv, "="); ok {
					cur.fields[k] = v
				} else if kv == "v2" || kv == "v3" {
					cur.version = kv[1] - '0'
				}
			}
		case len(fields) == 2 && (fields[0] == "frame" || fields[0] == "vrrp"):
			require.NotNil(t, cur, "hex before a comment line: %q", line)
			b, err := hex.DecodeString(fields[1])
			require.NoError(t, err)
			if fields[0] == "frame" {
				cur.frame = b
			} else {
				cur.vrrp = b
			}
		}
	}
	require.NoError(t, sc.Err())
	return out
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "number %q", s)
	return n
}

// TestGoldenHex decodes each distinct advert of GOLDEN-vrrp-hex.txt and
// checks it against the comment keepalived's capture produced, and that the
// frame is in the capture named.
func TestGoldenHex(t *testing.T) {
	golden := readGolden(t)
	require.Len(t, golden, 20)
	for i, g := range golden {
		t.Run(strconv.Itoa(i)+"-"+strings.TrimSuffix(g.file, ".pcap"), func(t *testing.T) {
			require.NotEmpty(t, g.frame)
			require.NotEmpty(t, g.vrrp)
			src, dst := mustAddr(g.src), mustAddr(g.dst)

			var adv Advertisement
			require.NoError(t, adv.UnmarshalBinary(g.vrrp))
			assert.Equal(t, g.version, adv.Version)
			assert.Equal(t, TypeAdvertisement, adv.Type)
			assert.Equal(t, atoi(t, g.fields["vrid"]), int(adv.VRID))
			assert.Equal(t, atoi(t, g.fields["prio"]), int(adv.Priority))
			assert.Len(t, adv.Addresses, atoi(t, g.fields["naddr"]))
			if g.version == 2 {
				assert.Equal(t, atoi(t, g.fields["auth"]), int(adv.AuthType))
				assert.Equal(t, atoi(t, strings.TrimSuffix(g.fields["int"], "s")), int(adv.AdverInt))
			} else {
				assert.Equal(t, atoi(t, strings.TrimSuffix(g.fields["maxadvint"], "cs")), int(adv.AdverInt))
			}
			require.NoError(t, VerifyChecksum(g.vrrp, src, dst, false))

			enc, err := adv.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, g.vrrp, enc)

			found := false
			for _, p := range readPcap(t, filepath.Join("testdata", g.file)) {
				if bytes.Equal(p.Frame, g.frame) {
					found = true
					assert.Equal(t, g.vrrp, p.Payload)
					assert.Equal(t, atoi(t, g.fields["ttl"]), int(p.TTL))
					assert.Equal(t, src, p.Src)
					assert.Equal(t, dst, p.Dst)
				}
			}
			assert.True(t, found, "frame not in %s", g.file)
		})
	}
}

// TestGoldenFields pins down concrete values from the captures.
func TestGoldenFields(t *testing.T) {
	decode := func(t *testing.T, s string) Advertisement {
		t.Helper()
		b, err := hex.DecodeString(s)
		require.NoError(t, err)
		var adv Advertisement
		require.NoError(t, adv.UnmarshalBinary(b))
		return adv
	}

	t.Run("v2 auth PASS, 3 VIPs, VRID 52", func(t *testing.T) {
		adv := decode(t, "2134c80301017e00c0a84d6ec0a84d6fc0a84d707365637265743132")
		assert.Equal(t, Advertisement{
			Version: 2, Type: 1, VRID: 52, Priority: 200, AuthType: AuthPass, AdverInt: 1,
			Checksum: 0x7e00,
			Addresses: []netip.Addr{
				mustAddr("192.168.77.110"), mustAddr("192.168.77.111"), mustAddr("192.168.77.112"),
			},
			AuthData: Password("secret12"),
		}, adv)
		assert.Equal(t, time.Second, adv.Interval())
	})
	t.Run("v2 priority 0 on stop", func(t *testing.T) {
		adv := decode(t, "213300010001d0bdc0a84d640000000000000000")
		assert.Equal(t, PriorityStop, adv.Priority)
		assert.Equal(t, AuthNone, adv.AuthType)
		assert.Equal(t, []netip.Addr{mustAddr("192.168.77.100")}, adv.Addresses)
	})
	t.Run("v3 50 cs, owner priority 255, VRID 53", func(t *testing.T) {
		adv := decode(t, "3135ff010032d33bc0a84d78")
		assert.Equal(t, Advertisement{
			Version: 3, Type: 1, VRID: 53, Priority: 255, AdverInt: 50, Checksum: 0xd33b,
			Addresses: []netip.Addr{mustAddr("192.168.77.120")},
		}, adv)
		assert.Equal(t, 500*time.Millisecond, adv.Interval())
		require.NoError(t, VerifyChecksum(mustHex(t, "3135ff010032d33bc0a84d78"), nodeA, MulticastGroup4, false))
		// keepalived's default includes the pseudo-header for IPv4 too.
		require.ErrorIs(t, VerifyChecksum(mustHex(t, "3135ff010032d33bc0a84d78"), nodeA, MulticastGroup4, true), ErrChecksum)
	})
	t.Run("v3 IPv6 VRID 54", func(t *testing.T) {
		adv := decode(t, "3136960100646f75fd000077000000000000000000000100")
		assert.Equal(t, Advertisement{
			Version: 3, Type: 1, VRID: 54, Priority: 150, AdverInt: 100, Checksum: 0x6f75,
			Addresses: []netip.Addr{mustAddr("fd00:77::100")},
		}, adv)
		require.NoError(t, VerifyChecksum(mustHex(t, "3136960100646f75fd000077000000000000000000000100"), nodeA6, MulticastGroup6, false))
	})
	t.Run("v3 unicast checksum uses the unicast destination", func(t *testing.T) {
		msg := mustHex(t, "3133960100640e87c0a84d64")
		require.NoError(t, VerifyChecksum(msg, nodeA, nodeB, false))
		require.ErrorIs(t, VerifyChecksum(msg, nodeA, MulticastGroup4, false), ErrChecksum)
	})
	t.Run("v3 track script lowers priority to 90", func(t *testing.T) {
		assert.Equal(t, uint8(90), decode(t, "31335a0100647820c0a84d64").Priority)
	})
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}
