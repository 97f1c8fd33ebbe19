package config

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/lvs"
)

var (
	vip  = netip.MustParseAddr("10.0.0.1")
	rip2 = netip.MustParseAddr("10.0.0.2")
)

func TestVirtualServerDefaults(t *testing.T) {
	cfg := mustParse(t, lines(
		"virtual_server 10.0.0.1 80 {",
		" real_server 10.0.0.2 {",
		" }",
		"}",
	))
	require.Len(t, cfg.VirtualServers, 1)
	assert.Equal(t, VirtualServer{
		Addr: vip, Port: 80,
		Protocol:               lvs.UDP, // keepalived's default, with a warning
		Scheduler:              "wlc",
		Forward:                lvs.NAT,
		PersistenceGranularity: 0xffffffff,
		DelayLoop:              60 * time.Second,
		Quorum:                 1,
		Reals: []RealServer{{
			Addr: rip2, Port: 80, Weight: 1, Forward: lvs.NAT,
			SMTPAlert: true, // keepalived's one smtp_alert on by default
			Pos:       Pos{"keepalived.conf", 2},
		}},
		Pos: Pos{"keepalived.conf", 1},
	}, cfg.VirtualServers[0])
	assert.Equal(t, []string{
		`keepalived.conf:1: no protocol set, defaulting to UDP for "10.0.0.1"`,
		`keepalived.conf:1: no lvs_sched set, defaulting to wlc for "10.0.0.1"`,
		`keepalived.conf:1: no lvs_method set, defaulting to NAT for "10.0.0.1"`,
	}, warningStrings(cfg))
}

func TestVirtualServerKeywords(t *testing.T) {
	cfg := mustParse(t, lines(
		"virtual_server 10.0.0.1 53 {",
		" protocol udp",
		" lvs_sched sh",
		" sh-port",
		" sh-fallback",
		" ops",
		" lvs_method DR",
		" persistence_timeout 300",
		" persistence_granularity 255.255.255.0",
		" delay_loop 6.5",
		" quorum 3",
		" hysteresis 1",
		" alpha",
		" omega",
		" quorum_up \"/bin/up now\"",
		" quorum_down /bin/down",
		" inhibit_on_failure",
		" sorry_server 10.0.0.200 53",
		" sorry_server_inhibit",
		" sorry_server_lvs_method TUN",
		" real_server 10.0.0.2 53 {",
		"  weight 3",
		"  uthreshold 1000",
		"  lthreshold 800",
		"  notify_up /bin/rs-up",
		"  notify_down \"/bin/rs down\" nobody",
		"  smtp_alert no",
		" }",
		" smtp_alert",
		"}",
	))
	vs := cfg.VirtualServers[0]
	assert.Equal(t, VirtualServer{
		Addr: vip, Port: 53, Protocol: lvs.UDP, Scheduler: "sh",
		SchedFlags:             lvs.Sched2 | lvs.Sched1 | lvs.OnePacket,
		Forward:                lvs.DR,
		PersistenceTimeout:     300 * time.Second,
		PersistenceGranularity: 0xffffff00,
		DelayLoop:              6500 * time.Millisecond,
		Quorum:                 3, Hysteresis: 1,
		Alpha: true, Omega: true,
		QuorumUp:         &Script{Args: []string{"/bin/up", "now"}},
		QuorumDown:       &Script{Args: []string{"/bin/down"}},
		InhibitOnFailure: true,
		SorryServer: &SorryServer{
			Addr: netip.MustParseAddr("10.0.0.200"), Port: 53, Forward: lvs.TUN, InhibitOnFailure: true,
		},
		SMTPAlert: true,
		Reals: []RealServer{{
			Addr: rip2, Port: 53, Weight: 3, Forward: lvs.DR,
			InhibitOnFailure: true, Alpha: true, // from the virtual server
			UThreshold: 1000, LThreshold: 800,
			NotifyUp:   &Script{Args: []string{"/bin/rs-up"}},
			NotifyDown: &Script{Args: []string{"/bin/rs", "down"}, User: "nobody"},
			Pos:        Pos{"keepalived.conf", 21},
		}},
		Pos: Pos{"keepalived.conf", 1},
	}, vs)
	assert.Empty(t, cfg.Warnings)
}

func TestDeprecatedAliases(t *testing.T) {
	old := mustParse(t, lines(
		"virtual_server 10.0.0.1 80 {",
		" protocol TCP",
		" lb_algo wrr",
		" lb_kind TUN",
		" real_server 10.0.0.2 80 {",
		"  HTTP_GET {",
		"   url {\n path /\n }",
		"   nb_get_retry 4",
		"  }",
		" }",
		"}",
	))
	cur := mustParse(t, lines(
		"virtual_server 10.0.0.1 80 {",
		" protocol TCP",
		" lvs_sched wrr",
		" lvs_method TUN",
		" real_server 10.0.0.2 80 {",
		"  HTTP_GET {",
		"   url {\n path /\n }",
		"   retry 4",
		"  }",
		" }",
		"}",
	))
	assert.Equal(t, []string{`keepalived.conf:10: deprecated, use retry: "nb_get_retry"`}, warningStrings(old))
	assert.Empty(t, cur.Warnings)
	clearPositions(old)
	clearPositions(cur)
	assert.Equal(t, cur, old)
	assert.Equal(t, 4, old.VirtualServers[0].Reals[0].Checkers[0].Retry)
}

func TestSchedFlagsNeedTheirScheduler(t *testing.T) {
	cfg := mustParse(t, vs1(" mh-port\n sh-port\n ops\n real_server 10.0.0.2 80 {\n }"))
	vs := cfg.VirtualServers[0]
	assert.Zero(t, vs.SchedFlags)
	assert.Equal(t, []string{
		`keepalived.conf:5: only applies to the mh scheduler, not rr; ignoring "mh-port"`,
		`keepalived.conf:6: only applies to the sh scheduler, not rr; ignoring "sh-port"`,
		`keepalived.conf:7: one-packet scheduling needs UDP; ignoring "ops"`,
	}, warningStrings(cfg))

	cfg = mustParse(t, "virtual_server 10.0.0.1 80 {\n protocol TCP\n lvs_sched mh\n mh-fallback\n mh-port\n real_server 10.0.0.2 80 {\n }\n}\n")
	assert.Equal(t, lvs.Sched1|lvs.Sched2, cfg.VirtualServers[0].SchedFlags)
}

func TestPersistence(t *testing.T) {
	for _, tc := range []struct {
		name    string
		addr    string
		port    string
		body    string
		timeout time.Duration
		gran    lvs.Netmask
		warning string
	}{
		{name: "none", addr: "10.0.0.1", port: "80", gran: 0xffffffff},
		{name: "timeout without value", addr: "10.0.0.1", port: "80", body: "persistence_timeout", timeout: 360 * time.Second, gran: 0xffffffff},
		{name: "granularity alone turns persistence on", addr: "10.0.0.1", port: "80", body: "persistence_granularity 255.255.0.0", timeout: 360 * time.Second, gran: 0xffff0000},
		{name: "a netmask that is not contiguous, as keepalived keeps it", addr: "10.0.0.1", port: "80", body: "persistence_timeout 60\n persistence_granularity 255.0.255.0", timeout: time.Minute, gran: 0xff00ff00},
		{name: "IPv6 granularity", addr: "2001:db8::1", port: "80", body: "persistence_timeout 60\n persistence_granularity 64", timeout: time.Minute, gran: 64},
		{
			name: "port 0 forces persistence", addr: "10.0.0.1", port: "0", timeout: 360 * time.Second, gran: 0xffffffff,
			warning: `keepalived.conf:1: port 0 is only valid for a persistent service; setting persistence_timeout 6m0s for "10.0.0.1"`,
		},
		{name: "no port, persistent", addr: "10.0.0.1", port: "", body: "persistence_timeout 100", timeout: 100 * time.Second, gran: 0xffffffff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := "10.0.0.2"
			if netip.MustParseAddr(tc.addr).Is6() {
				rs = "2001:db8::2"
			}
			cfg := mustParse(t, lines(
				"virtual_server "+tc.addr+" "+tc.port+" {",
				" protocol TCP\n lvs_sched rr\n lvs_method NAT",
				" "+tc.body,
				" real_server "+rs+" {\n }",
				"}",
			))
			vs := cfg.VirtualServers[0]
			assert.Equal(t, tc.timeout, vs.PersistenceTimeout)
			assert.Equal(t, tc.gran, vs.PersistenceGranularity)
			if tc.warning != "" {
				assert.Equal(t, []string{tc.warning}, warningStrings(cfg))
			} else {
				assert.Empty(t, cfg.Warnings)
			}
		})
	}
}

func TestQuorumCorrections(t *testing.T) {
	cfg := mustParse(t, vs1(" quorum 5\n hysteresis 9\n real_server 10.0.0.2 80 {\n  weight 2\n }\n real_server 10.0.0.3 80 {\n  weight 2\n }"))
	vs := cfg.VirtualServers[0]
	assert.Equal(t, uint32(4), vs.Quorum)
	assert.Equal(t, uint32(3), vs.Hysteresis)
	assert.Equal(t, []string{
		`keepalived.conf:1: quorum 5 exceeds the total weight 4 of the real servers; using 4 for "10.0.0.1"`,
		`keepalived.conf:1: hysteresis 9 must be below quorum 4; using 3 for "10.0.0.1"`,
	}, warningStrings(cfg))
}

func TestRealServerPorts(t *testing.T) {
	cfg := mustParse(t, lines(
		"virtual_server 10.0.0.1 80 {",
		" protocol TCP\n lvs_sched rr\n lvs_method NAT",
		" real_server 10.0.0.2 8080 {\n }", // NAT may change the port
		" real_server 10.0.0.3 8080 {\n  lvs_method DR\n }",
		" real_server 10.0.0.4 {\n  lvs_method TUN\n }",
		" real_server 10.0.0.2 8080 {\n  weight 9\n }",
		" sorry_server 10.0.0.9",
		"}",
	))
	vs := cfg.VirtualServers[0]
	require.Len(t, vs.Reals, 3)
	assert.Equal(t, uint16(8080), vs.Reals[0].Port)
	assert.Equal(t, lvs.NAT, vs.Reals[0].Forward)
	assert.Equal(t, uint16(80), vs.Reals[1].Port)
	assert.Equal(t, lvs.DR, vs.Reals[1].Forward)
	assert.Equal(t, uint16(80), vs.Reals[2].Port)
	assert.Equal(t, lvs.TUN, vs.Reals[2].Forward)
	assert.Equal(t, &SorryServer{Addr: netip.MustParseAddr("10.0.0.9"), Port: 80, Forward: lvs.NAT}, vs.SorryServer)
	assert.Equal(t, []string{
		`keepalived.conf:7: only NAT can change the port; using port 80 for real_server "10.0.0.3"`,
		`keepalived.conf:13: real_server duplicated in the same virtual_server; ignoring the second "10.0.0.2"`,
	}, warningStrings(cfg))
}

// TestCheckerDefaults checks keepalived's per-kind defaults: retry 1 (MISC
// 0, DNS 3), delay_before_retry 1s (HTTP/SSL 3s, DNS delay_loop),
// connect_timeout 5s, delay_loop from the virtual server.
func TestCheckerDefaults(t *testing.T) {
	cfg := mustParse(t, vs1(lines(
		" delay_loop 10",
		" real_server 10.0.0.2 80 {",
		"  TCP_CHECK {\n  }",
		"  HTTP_GET {\n   url {\n    path /\n   }\n  }",
		"  SSL_GET {\n   url {\n    path /s\n   }\n  }",
		"  MISC_CHECK {\n   misc_path /bin/check\n  }",
		"  DNS_CHECK {\n  }",
		" }",
	)))
	cs := cfg.VirtualServers[0].Reals[0].Checkers
	require.Len(t, cs, 5)
	d := 10 * time.Second
	conn := func(c Checker) Checker {
		c.ConnectIP, c.ConnectPort, c.ConnectTimeout = rip2, 80, 5*time.Second
		c.DelayLoop, c.Warmup = d, d
		return c
	}
	url := func(p string) []URL { return []URL{{Path: p, StatusCodes: []StatusRange{{200, 299}}}} }
	assert.Equal(t, conn(Checker{Kind: TCPCheck, Retry: 1, DelayBeforeRetry: time.Second, Pos: Pos{"keepalived.conf", 7}}), cs[0])
	assert.Equal(t, conn(Checker{Kind: HTTPGet, Retry: 1, DelayBeforeRetry: 3 * time.Second, HTTPProtocol: "1.0", URLs: url("/"), Pos: Pos{"keepalived.conf", 9}}), cs[1])
	assert.Equal(t, conn(Checker{Kind: SSLGet, Retry: 1, DelayBeforeRetry: 3 * time.Second, HTTPProtocol: "1.0", URLs: url("/s"), Pos: Pos{"keepalived.conf", 14}}), cs[2])
	assert.Equal(t, Checker{
		Kind: MiscCheck, Retry: 0, DelayBeforeRetry: time.Second, DelayLoop: d, Warmup: d,
		Misc: &Script{Args: []string{"/bin/check"}}, MiscTimeout: d, Pos: Pos{"keepalived.conf", 19},
	}, cs[3])
	assert.Equal(t, conn(Checker{Kind: DNSCheck, Retry: 3, DelayBeforeRetry: d, DNSType: "SOA", DNSName: ".", Pos: Pos{"keepalived.conf", 22}}), cs[4])
}

// TestCheckerInheritance checks that a checker's settings come from the
// checker, else the real server, else the virtual server.
func TestCheckerInheritance(t *testing.T) {
	cfg := mustParse(t, vs1(lines(
		" delay_loop 30",
		" connect_timeout 7",
		" retry 2",
		" delay_before_retry 4",
		" warmup 1",
		" virtualhost vs.example",
		" real_server 10.0.0.2 80 {",
		"  connect_timeout 8",
		"  virtualhost rs.example",
		"  alpha",
		"  HTTP_GET {",
		"   retry 5",
		"   url {\n    path /a\n   }",
		"   url {\n    path /b\n    virtualhost url.example\n   }",
		"  }",
		"  MISC_CHECK {\n   misc_path /bin/m\n   misc_timeout 3\n   delay_loop 2.5\n   alpha off\n  }",
		" }",
		" real_server 10.0.0.3 80 {",
		"  TCP_CHECK {\n   connect_ip 10.0.0.33\n   connect_port 8080\n   bindto 10.0.0.250\n   bind_port 40000\n   bind_if eth1\n  }",
		" }",
	)))
	vs := cfg.VirtualServers[0]
	h := vs.Reals[0].Checkers[0]
	assert.Equal(t, 8*time.Second, h.ConnectTimeout)   // real server
	assert.Equal(t, 5, h.Retry)                        // checker
	assert.Equal(t, 4*time.Second, h.DelayBeforeRetry) // virtual server
	assert.Equal(t, 30*time.Second, h.DelayLoop)
	assert.Equal(t, time.Second, h.Warmup)
	assert.True(t, h.Alpha)
	assert.Equal(t, "rs.example", h.URLs[0].Virtualhost)
	assert.Equal(t, "url.example", h.URLs[1].Virtualhost)

	m := vs.Reals[0].Checkers[1]
	assert.Equal(t, 2, m.Retry) // the virtual server's retry beats MISC's own default
	assert.Equal(t, 2500*time.Millisecond, m.DelayLoop)
	assert.Equal(t, 3*time.Second, m.MiscTimeout)
	assert.False(t, m.Alpha)
	assert.Zero(t, m.ConnectTimeout)

	tc := vs.Reals[1].Checkers[0]
	assert.Equal(t, netip.MustParseAddr("10.0.0.33"), tc.ConnectIP)
	assert.Equal(t, uint16(8080), tc.ConnectPort)
	assert.Equal(t, netip.MustParseAddr("10.0.0.250"), tc.BindTo)
	assert.Equal(t, uint16(40000), tc.BindPort)
	assert.Equal(t, "eth1", tc.BindIf)
	assert.False(t, tc.Alpha)
	assert.Equal(t, 7*time.Second, tc.ConnectTimeout)
}

func TestHTTPChecker(t *testing.T) {
	cfg := mustParse(t, vs1(lines(
		" real_server 10.0.0.2 80 {",
		"  SSL_GET {",
		"   http_protocol 1.1",
		"   fast_recovery",
		"   enable_sni",
		"   url {",
		"    path /health",
		"    digest 9B3A0C85A887A256D6939DA88AABD8CD",
		"    status_code 200-299 400-499 503 505",
		"   }",
		"  }",
		" }",
	)))
	c := cfg.VirtualServers[0].Reals[0].Checkers[0]
	assert.Equal(t, "1.1", c.HTTPProtocol)
	assert.True(t, c.FastRecovery)
	assert.True(t, c.EnableSNI)
	assert.Equal(t, []URL{{
		Path:        "/health",
		Digest:      "9b3a0c85a887a256d6939da88aabd8cd",
		StatusCodes: []StatusRange{{200, 299}, {400, 499}, {503, 503}, {505, 505}},
	}}, c.URLs)
}

func TestMiscAndDNSChecker(t *testing.T) {
	cfg := mustParse(t, vs1(lines(
		" real_server 10.0.0.2 80 {",
		"  MISC_CHECK {",
		`   misc_path "/usr/local/bin/check_rs.sh 10.0.0.23 'two words'"`,
		"   misc_timeout 5",
		"   misc_dynamic",
		"   user nobody nogroup",
		"  }",
		"  DNS_CHECK {",
		"   type aaaa",
		"   name www.example.com",
		"   connect_port 53",
		"  }",
		" }",
	)))
	cs := cfg.VirtualServers[0].Reals[0].Checkers
	assert.Equal(t, &Script{Args: []string{"/usr/local/bin/check_rs.sh", "10.0.0.23", "two words"}, User: "nobody", Group: "nogroup"}, cs[0].Misc)
	assert.Equal(t, 5*time.Second, cs[0].MiscTimeout)
	assert.True(t, cs[0].MiscDynamic)
	assert.Equal(t, "AAAA", cs[1].DNSType)
	assert.Equal(t, "www.example.com", cs[1].DNSName)
	assert.Equal(t, uint16(53), cs[1].ConnectPort)

	// Unquoted words after the path are not arguments to keepalived.
	cfg = mustParse(t, vs1(" real_server 10.0.0.2 80 {\n  MISC_CHECK {\n   misc_path /bin/check a b\n  }\n }"))
	assert.Equal(t, []string{"/bin/check"}, cfg.VirtualServers[0].Reals[0].Checkers[0].Misc.Args)
	assert.Equal(t, []string{
		`keepalived.conf:7: misc_path takes one command (quote it to pass arguments); ignored words from "a"`,
	}, warningStrings(cfg))
}

func TestUnsupportedButKnown(t *testing.T) {
	cfg := mustParse(t, lines(
		"global_defs {",
		" lvs_flush", // keepalived knows it, xlb does not
		"}",
		"static_routes {",
		" 10.1.0.0/16 via 10.0.0.254",
		"}",
		"virtual_server 10.0.0.1 80 {",
		" protocol TCP\n lvs_sched rr\n lvs_method DR",
		" ha_suspend",
		" real_server 10.0.0.2 80 {",
		"  snmp_name web1",
		"  BFD_CHECK {\n   name x\n  }",
		"  TCP_CHECK {\n   log_all_failures\n  }",
		"  HTTP_GET {\n   url {\n    path /\n    regex_stack 1 2\n   }\n  }",
		" }",
		"}",
		"vrrp_instance VI_1 {",
		" interface eth0\n virtual_router_id 1",
		" virtual_ipaddress {\n  10.0.0.1/24 brd 10.0.0.255 scope global\n }",
		" virtual_routes {\n  0.0.0.0/0 via 10.0.0.254\n }",
		"}",
	))
	assert.Equal(t, []string{
		`keepalived.conf:2: keepalived keyword not implemented by xlb, ignored: "lvs_flush"`,
		`keepalived.conf:4: keepalived block not implemented by xlb, ignored: "static_routes"`,
		`keepalived.conf:11: keepalived keyword not implemented by xlb, ignored: "ha_suspend"`,
		`keepalived.conf:13: keepalived keyword not implemented by xlb, ignored: "snmp_name"`,
		`keepalived.conf:14: checker not implemented by xlb, ignored: BFD will never take this real server down (its other checkers still do): "BFD_CHECK"`,
		`keepalived.conf:18: keepalived keyword not implemented by xlb, ignored: "log_all_failures"`,
		`keepalived.conf:23: PCRE2's JIT stack size; Go's regexp needs none, ignored: "regex_stack"`,
		`keepalived.conf:32: virtual_ipaddress option not implemented by xlb, ignored: "brd"`,
		`keepalived.conf:32: virtual_ipaddress option not implemented by xlb, ignored: "scope"`,
		`keepalived.conf:34: keepalived block not implemented by xlb, ignored: "virtual_routes"`,
	}, warningStrings(cfg))
}

func TestLVSErrors(t *testing.T) {
	rs := " real_server 10.0.0.2 80 {\n }"
	for _, tc := range []struct {
		name, src, want string
	}{
		{"fwmark 0", "virtual_server fwmark 0 {\n}\n", `keepalived.conf:1: virtual_server fwmark must be an integer in [1, 4294967295], got "0"`},
		{"group not defined", "virtual_server group G {\n" + rs + "\n}\n", `keepalived.conf:1: virtual server group G specified but not configured: "group G"`},
		{"group twice", "virtual_server_group G {\n 10.0.0.1 80\n}\nvirtual_server group G {\n protocol UDP\n lb_algo rr\n lb_kind DR\n" + rs + "\n}\nvirtual_server group G {\n protocol UDP\n lb_algo rr\n lb_kind DR\n" + rs + "\n}\n",
			`keepalived.conf:11: virtual_server 10.0.0.1 port 80 UDP is already defined at keepalived.conf:4: "group G"`},
		{"group entry clashes", "virtual_server_group G {\n 10.0.0.1-3 80\n}\nvirtual_server group G {\n protocol TCP\n lb_algo rr\n lb_kind DR\n" + rs + "\n}\n" + vs1(rs),
			`keepalived.conf:11: virtual_server 10.0.0.1 port 80 TCP is already defined at keepalived.conf:4: "10.0.0.1"`},
		{"group range backwards", "virtual_server_group G {\n 10.0.0.9-3 80\n}\n", `keepalived.conf:2: (G) address range end is not greater than address range start: "10.0.0.9-3"`},
		{"group mask bits", "virtual_server_group G {\n 10.0.0.1/24 80\n}\n", `keepalived.conf:2: (G) address mask bits not empty: "10.0.0.1/24"`},
		{"group too big", "virtual_server_group G {\n 10.0.0.0/8 80\n}\n", `keepalived.conf:2: virtual_server_group ranges expand to more than 65536 services (keepalived makes one IPVS service per address): "10.0.0.0/8"`},
		{"bad address", "virtual_server 10.0.0 80 {\n}\n", `keepalived.conf:1: virtual_server: not an IP address: "10.0.0"`},
		{"port too big", "virtual_server 10.0.0.1 65536 {\n}\n", `keepalived.conf:1: virtual_server port must be an integer in [0, 65535], got "65536"`},
		{"port not a number", "virtual_server 10.0.0.1 http {\n}\n", `keepalived.conf:1: virtual_server port must be an integer in [0, 65535], got "http"`},
		{"no address", "virtual_server {\n}\n", `keepalived.conf:1: missing address after "virtual_server"`},
		{"real port", vs1(" real_server 10.0.0.2 -1 {\n }"), `keepalived.conf:5: real_server port must be an integer in [0, 65535], got "-1"`},
		{"real address", vs1(" real_server host1 80 {\n }"), `keepalived.conf:5: real_server: not an IP address: "host1"`},
		{"weight negative", vs1(" real_server 10.0.0.2 80 {\n  weight -1\n }"), `keepalived.conf:6: weight must be an integer in [0, 2147483647], got "-1"`},
		{"weight too big", vs1(" real_server 10.0.0.2 80 {\n  weight 2147483648\n }"), `keepalived.conf:6: weight must be an integer in [0, 2147483647], got "2147483648"`},
		{"scheduler", vs1(" lvs_sched wrrr\n" + rs), `keepalived.conf:5: unknown scheduler (want one of rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos): "wrrr"`},
		{"method", vs1(" lb_kind dr\n" + rs), `keepalived.conf:5: lb_kind must be NAT, DR, TUN or FNAT, got "dr"`},
		{"protocol", vs1(" protocol ICMP\n" + rs), `keepalived.conf:5: protocol must be TCP, UDP or SCTP, got "ICMP"`},
		{"persistence 0", vs1(" persistence_timeout 0\n" + rs), `keepalived.conf:5: persistence_timeout must be an integer in [1, 2678400], got "0"`},
		{"granularity", vs1(" persistence_granularity 0.0.0.0\n" + rs), `keepalived.conf:5: persistence_granularity 0.0.0.0 (every client in one template) is not supported by xlb: "0.0.0.0"`},
		{"quorum 0", vs1(" quorum 0\n" + rs), `keepalived.conf:5: quorum must be an integer in [1, 4294967295], got "0"`},
		{"delay_loop 0", vs1(" delay_loop 0\n" + rs), `keepalived.conf:5: delay_loop must be seconds in [0.000001, 1000000000], got "0"`},
		{"retry 0 on a server", vs1(" retry 0\n" + rs), `keepalived.conf:5: retry must be an integer in [1, 4294967295], got "0"`},
		{"connect_timeout", vs1(" connect_timeout 5000\n" + rs), `keepalived.conf:5: connect_timeout must be seconds in [0.000001, 4294.967295], got "5000"`},
		{"connect_port 0", vs1(" real_server 10.0.0.2 80 {\n  TCP_CHECK {\n   connect_port 0\n  }\n }"), `keepalived.conf:7: connect_port must be an integer in [1, 65535], got "0"`},
		{"connect_ip", vs1(" real_server 10.0.0.2 80 {\n  TCP_CHECK {\n   connect_ip localhost\n  }\n }"), `keepalived.conf:7: connect_ip: not an IP address: "localhost"`},
		{"no url", vs1(" real_server 10.0.0.2 80 {\n  HTTP_GET {\n  }\n }"), `keepalived.conf:6: no url block in "HTTP_GET"`},
		{"no path", vs1(" real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n   }\n  }\n }"), `keepalived.conf:7: no path in "url"`},
		{"digest", vs1(" real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n    digest 1234\n   }\n  }\n }"), `keepalived.conf:9: digest must be 32 hex digits (an MD5 sum), got "1234"`},
		{"status code", vs1(" real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n    status_code 200-199\n   }\n  }\n }"), `keepalived.conf:9: status_code: range runs backwards: "200-199"`},
		{"status range", vs1(" real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n    status_code 99\n   }\n  }\n }"), `keepalived.conf:9: status_code: codes must be in [100, 599]: "99"`},
		{"http_protocol", vs1(" real_server 10.0.0.2 80 {\n  HTTP_GET {\n   http_protocol 2\n   url {\n    path /\n   }\n  }\n }"), `keepalived.conf:7: http_protocol must be 1.0, 1.0C or 1.1, got "2"`},
		{"misc without path", vs1(" real_server 10.0.0.2 80 {\n  MISC_CHECK {\n  }\n }"), `keepalived.conf:6: no misc_path in "MISC_CHECK"`},
		{"misc timeout", vs1(" real_server 10.0.0.2 80 {\n  MISC_CHECK {\n   misc_path x\n   misc_timeout 1.5\n  }\n }"), `keepalived.conf:8: misc_timeout must be an integer in [0, 4294], got "1.5"`},
		{"dns type", vs1(" real_server 10.0.0.2 80 {\n  DNS_CHECK {\n   type PTR\n  }\n }"), `keepalived.conf:7: DNS_CHECK type must be one of A NS CNAME SOA MX TXT AAAA, got "PTR"`},
		{"connect_ip in MISC", vs1(" real_server 10.0.0.2 80 {\n  MISC_CHECK {\n   misc_path x\n   connect_ip 1.2.3.4\n  }\n }"), `keepalived.conf:8: unknown keyword in MISC_CHECK: "connect_ip"`},
		{"inhibit in a checker", vs1(" real_server 10.0.0.2 80 {\n  TCP_CHECK {\n   inhibit_on_failure\n  }\n }"), `keepalived.conf:7: unknown keyword in TCP_CHECK: "inhibit_on_failure"`},
		{"nb_get_retry on a server", vs1(" nb_get_retry 3\n" + rs), `keepalived.conf:5: unknown keyword in virtual_server: "nb_get_retry"`},
		{"duplicate virtual server", vs1(rs) + vs1(rs), `keepalived.conf:8: virtual_server 10.0.0.1 port 80 TCP is already defined at keepalived.conf:1: "10.0.0.1"`},
		{"real_server outside", "real_server 10.0.0.2 80 {\n}\n", `keepalived.conf:1: outside a virtual_server: "real_server"`},
		{"real_server in vrrp_instance", vrrp1(rs), `keepalived.conf:4: unknown keyword in vrrp_instance: "real_server"`},
		{"missing close brace", vs1(" real_server 10.0.0.2 80 {\n  weight 1\n"), `keepalived.conf:1: missing "}" for the block of "virtual_server"`},
		{"extra close brace", vs1(rs) + "}\n", `keepalived.conf:8: closes no block: "}"`},
		{"stray open brace", "{\n}\n", `keepalived.conf:1: block with no keyword: "{"`},
		{"unterminated quote", vs1(" real_server 10.0.0.2 80 {\n  notify_up \"/bin/x\n }"), `keepalived.conf:6: unterminated quote in "notify_up \"/bin/x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := parseErrors(t, tc.src)
			assert.Equal(t, tc.want, errs[0].Error())
		})
	}
}

// TestGroups: virtual_server_group entries as keepalived 2.2.7 reads them
// (check_data.c alloc_vsg_entry), and the services a group stands for.
func TestGroups(t *testing.T) {
	rs := " real_server 10.0.0.2 80 {\n }"
	cfg := mustParse(t, lines(
		"virtual_server_group G {",
		" 10.0.0.1 80",
		" 10.0.1.250-252 443",
		" 10.0.2.0/31 8080",
		" 10.0.3.1-10.0.3.2 0",
		" fwmark 7",
		"}",
		"virtual_server_group V6 {",
		" fd00::a-c 80",
		" fwmark 8 inet6",
		"}",
		"virtual_server_group UNUSED {",
		" 10.9.9.9 80",
		"}",
		"virtual_server group G {",
		" protocol TCP",
		" lb_kind DR",
		rs,
		"}",
		"virtual_server group V6 {",
		" protocol TCP",
		" lb_kind DR",
		" real_server fd00::100 80 {\n }",
		"}",
	))
	require.Len(t, cfg.VirtualServers, 2)
	var got []string
	for _, vs := range cfg.VirtualServers {
		for _, e := range vs.Services() {
			if e.FWMark != 0 {
				got = append(got, fmt.Sprintf("fwmark %d v%d", e.FWMark, e.Family))
			} else {
				got = append(got, netip.AddrPortFrom(e.Addr, e.Port).String())
			}
		}
	}
	assert.Equal(t, []string{"10.0.0.1:80", "10.0.1.250:443", "10.0.1.251:443", "10.0.1.252:443", "10.0.2.0:8080", "10.0.2.1:8080",
		"10.0.3.1:0", "10.0.3.2:0", "fwmark 7 v4",
		"[fd00::a]:80", "[fd00::b]:80", "[fd00::c]:80", "fwmark 8 v6"}, got)
	g := cfg.VirtualServers[0]
	assert.Equal(t, netip.MustParseAddr("10.0.0.1"), g.Addr, "the first address entry")
	assert.Equal(t, 360*time.Second, g.PersistenceTimeout, "a port-0 entry makes the service persistent, as keepalived does")
	assert.Equal(t, uint16(80), g.Reals[0].Port)
	assert.Contains(t, warningStrings(cfg), `keepalived.conf:15: port 0 is only valid for a persistent service; setting persistence_timeout 6m0s for "group G"`)

	// A group of both families is dropped with its virtual server, as
	// keepalived drops it.
	cfg = mustParse(t, "virtual_server_group M {\n 10.0.0.1 80\n fd00::1 80\n}\nvirtual_server group M {\n"+rs+"\n}\n")
	assert.Empty(t, cfg.VirtualServers)
	assert.Contains(t, warningStrings(cfg)[0], "has IPv4 and IPv6 entries")
}

func TestErrorFields(t *testing.T) {
	_, err := parse(memSource{}, "keepalived.conf", []byte(vrrp1(" priority 300")), Options{Strict: true})
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, &ParseError{File: "keepalived.conf", Line: 4, Word: "300", Msg: "priority must be an integer in [1, 255], got"}, pe)

	// Every error is reported, not only the first.
	errs := parseErrors(t, vrrp1(" priority 0\n advert_int 0\n bogus"))
	assert.Len(t, errs, 3)
	assert.Equal(t, 6, errs[2].Line)
}

// sloppy_tcp and sloppy_sctp (xlb's keywords, IPVS's sysctl names) belong
// to a service of that protocol.
func TestSloppyKeywords(t *testing.T) {
	cfg := mustParse(t, "virtual_server 10.0.0.1 80 {\n protocol TCP\n lvs_sched mh\n lb_kind DR\n sloppy_tcp\n real_server 10.0.0.2 80 {\n }\n}\n")
	assert.True(t, cfg.VirtualServers[0].Sloppy)
	assert.Empty(t, cfg.Warnings)
	cfg = mustParse(t, "virtual_server 10.0.0.1 80 {\n protocol UDP\n sloppy_tcp\n sloppy_sctp\n real_server 10.0.0.2 80 {\n }\n}\n")
	assert.False(t, cfg.VirtualServers[0].Sloppy)
	assert.Contains(t, warningStrings(cfg), `keepalived.conf:3: only applies to TCP services, not UDP; ignoring "sloppy_tcp"`)
	assert.Contains(t, warningStrings(cfg), `keepalived.conf:4: only applies to SCTP services, not UDP; ignoring "sloppy_sctp"`)
}

// lvs_method TUN's tunnel options, as keepalived reads them: a virtual
// server's are its reals' unless a real says lvs_method itself; the
// formatted file says them again.
func TestTunnelOptions(t *testing.T) {
	cfg := mustParse(t, "virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n lvs_method TUN type gue port 6080 csum\n"+
		" real_server 10.0.0.2 80 {\n }\n"+
		" real_server 10.0.0.3 80 {\n  lvs_method TUN type gre\n }\n"+
		" real_server 10.0.0.4 80 {\n  lvs_method TUN\n }\n"+
		" real_server 10.0.0.5 80 {\n  lvs_method DR\n }\n}\n")
	vs := cfg.VirtualServers[0]
	gue := lvs.Tunnel{Type: lvs.TunGUE, Port: 6080, Flags: lvs.TunCsum}
	assert.Equal(t, lvs.TUN, vs.Forward)
	assert.Equal(t, gue, vs.Tunnel)
	assert.Equal(t, gue, vs.Reals[0].Tunnel, "inherited")
	assert.Equal(t, lvs.Tunnel{Type: lvs.TunGRE}, vs.Reals[1].Tunnel)
	assert.Equal(t, lvs.Tunnel{}, vs.Reals[2].Tunnel, "lvs_method TUN alone is ipip")
	assert.Equal(t, lvs.DR, vs.Reals[3].Forward)
	out := string(Format(cfg))
	assert.Contains(t, out, "lvs_method TUN type gue port 6080 csum\n")
	assert.Contains(t, out, "lvs_method TUN type gre\n")
	again := mustParse(t, out)
	assert.Equal(t, vs.Reals[0].Tunnel, again.VirtualServers[0].Reals[0].Tunnel)
	assert.Equal(t, vs.Reals[1].Tunnel, again.VirtualServers[0].Reals[1].Tunnel)
}
