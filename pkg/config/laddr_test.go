package config

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// FULLNAT as the keepalived that ships with DPVS writes it: a top-level
// local_address_group (addresses, last-byte ranges, each with a DPVS
// device), lb_kind FNAT and laddr_group_name in the virtual server. The
// device is said to be unused; FNAT reals keep their ports (FULLNAT maps
// them, as NAT); Format writes it all back.
func TestFULLNATConfig(t *testing.T) {
	cfg := mustParse(t, `local_address_group laddr_g1 {
    192.168.88.240 dpdk0
    192.168.88.250-252 dpdk0
}
virtual_server 192.168.88.1 80 {
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
    toa
    real_server 192.168.88.30 8080 {
        weight 1
    }
    real_server 192.168.88.31 8080 {
        lvs_method NAT
    }
}
`)
	require.Len(t, cfg.VirtualServers, 1)
	vs := cfg.VirtualServers[0]
	assert.Equal(t, lvs.FNAT, vs.Forward)
	assert.Equal(t, "laddr_g1", vs.LocalAddrGroup)
	assert.True(t, vs.TOA)
	want := []netip.Addr{netip.MustParseAddr("192.168.88.240"), netip.MustParseAddr("192.168.88.250"),
		netip.MustParseAddr("192.168.88.251"), netip.MustParseAddr("192.168.88.252")}
	assert.Equal(t, want, vs.LocalAddrs)
	assert.Equal(t, lvs.FNAT, vs.Reals[0].Forward)
	assert.EqualValues(t, 8080, vs.Reals[0].Port, "FULLNAT maps ports")
	assert.Equal(t, lvs.NAT, vs.Reals[1].Forward)
	assert.Contains(t, warningStrings(cfg), `keepalived.conf:2: (laddr_g1) a DPVS device name: xlb does not configure local addresses; each must be one the director holds (ip addr add), not used: "dpdk0"`)

	again := mustParse(t, string(Format(cfg)))
	assert.Equal(t, want, again.VirtualServers[0].LocalAddrs, "Format writes the group back")
	assert.Equal(t, lvs.FNAT, again.VirtualServers[0].Reals[0].Forward)
	assert.True(t, again.VirtualServers[0].TOA)
	assert.Equal(t, string(Format(cfg)), string(Format(again)))
}

// What a FULLNAT configuration may get wrong is said at its line: a group
// that is not defined, a bad entry, local addresses without an FNAT real,
// a misspelt method.
func TestFULLNATConfigMistakes(t *testing.T) {
	cfg := mustParse(t, `local_address_group g {
    192.168.88.240
    not-an-address
    192.168.88.9-3
}
local_address_group g {
    192.168.88.241
}
virtual_server 192.168.88.1 80 {
    lb_kind FNAT
    protocol TCP
    laddr_group_name nosuch
    real_server 192.168.88.30 80 {
    }
}
virtual_server 192.168.88.2 80 {
    lb_kind DR
    protocol TCP
    toa
    laddr_group_name g
    real_server 192.168.88.30 80 {
    }
}
virtual_server 2001:db8::1 80 {
    lb_kind FNAT
    protocol TCP
    laddr_group_name g
    real_server 192.168.88.30 80 {
    }
    real_server 2001:db8::30 80 {
    }
}
virtual_server 192.168.88.3 80 {
    lb_kind fnat
    protocol TCP
    real_server 192.168.88.30 80 {
    }
}
`)
	ws := warningStrings(cfg)
	assert.Contains(t, ws, `keepalived.conf:6: local_address_group already defined at keepalived.conf:1; ignoring this one: "g"`)
	assert.Contains(t, ws, `keepalived.conf:3: (g) not an address or ADDR-LAST range; skipped: "not-an-address"`)
	assert.Contains(t, ws, `keepalived.conf:4: (g) not an address or ADDR-LAST range; skipped: "192.168.88.9-3"`)
	assert.Contains(t, ws, `keepalived.conf:12: no local_address_group of this name; the virtual server has no local addresses: "nosuch"`)
	assert.Contains(t, ws, `keepalived.conf:19: a TCP option of FULLNAT connections, and this virtual server has no FNAT real or is not TCP; not used: "toa"`)
	assert.Contains(t, ws, `keepalived.conf:20: local addresses are for FNAT reals, and this virtual server has none; not used: "laddr_group_name"`)
	assert.Contains(t, ws, `keepalived.conf:34: lb_kind must be NAT, DR, TUN or FNAT, got "fnat": ignored, as keepalived ignores it`)
	require.Len(t, cfg.VirtualServers, 4)
	assert.Empty(t, cfg.VirtualServers[0].LocalAddrs)
	assert.Empty(t, cfg.VirtualServers[1].LocalAddrs)
	// DPVS's NAT64, an IPv4 real of an IPv6 virtual server by FULLNAT,
	// is kept (the data planes say whether they do it).
	assert.Len(t, cfg.VirtualServers[2].Reals, 2)
	for _, w := range ws {
		assert.NotContains(t, w, "family", "NAT64 is no mistake")
	}
}

// IPv6 local addresses, as DPVS's keepalived reads them (inet_stor): an
// address, or a range whose end is the last 16-bit group in hex; a range
// that runs backwards is said at its line.
func TestFULLNATConfigIPv6(t *testing.T) {
	cfg := mustParse(t, `local_address_group g6 {
    2001:db8::50 dpdk0
    2001:db8::a-c
    2001:db8::c-a
}
virtual_server 2001:db8::1 80 {
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name g6
    real_server 2001:db8:1::30 8080 {
        weight 1
    }
}
`)
	require.Len(t, cfg.VirtualServers, 1)
	vs := cfg.VirtualServers[0]
	want := []netip.Addr{netip.MustParseAddr("2001:db8::50"), netip.MustParseAddr("2001:db8::a"),
		netip.MustParseAddr("2001:db8::b"), netip.MustParseAddr("2001:db8::c")}
	assert.Equal(t, want, vs.LocalAddrs)
	require.Len(t, vs.Reals, 1)
	assert.Equal(t, lvs.FNAT, vs.Reals[0].Forward)
	ws := warningStrings(cfg)
	assert.Contains(t, ws, `keepalived.conf:4: (g6) not an address or ADDR-LAST range; skipped: "2001:db8::c-a"`)
	for _, w := range ws {
		assert.NotContains(t, w, "NAT64", "an IPv6 real of an IPv6 virtual server")
	}
	again := mustParse(t, string(Format(cfg)))
	assert.Equal(t, want, again.VirtualServers[0].LocalAddrs, "Format writes the group back")
}
