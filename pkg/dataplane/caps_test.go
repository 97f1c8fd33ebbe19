package dataplane

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// The rules Apply and the director's validation share, for a data plane
// that has only IPv4, DR and NAT, rr and sh, TCP and UDP (the XDP data
// plane's shape).
func TestCapsRules(t *testing.T) {
	caps := Caps{Name: "the test data plane", Schedulers: []string{"rr", "sh"}, Forwards: []lvs.Forward{lvs.DR, lvs.NAT},
		Protocols: []lvs.Protocol{lvs.TCP, lvs.UDP}, Flags: lvs.SchedFlags}
	svc := func() Service {
		return Service{ServiceKey: ServiceKey{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Protocol: lvs.TCP}, Scheduler: "rr"}
	}
	real := Real{Addr: netip.MustParseAddr("10.0.1.1"), Port: 80, Weight: 1, Forward: lvs.DR}
	assert.NoError(t, caps.CheckService(svc()))
	assert.NoError(t, caps.CheckReal(svc(), real))

	for _, c := range []struct {
		change func(*Service)
		want   string
	}{
		{func(s *Service) { s.Addr = netip.MustParseAddr("fd00::1") }, "only IPv4 virtual servers are supported by the test data plane so far"},
		{func(s *Service) { s.Protocol = lvs.SCTP }, "protocol SCTP is not supported by the test data plane (TCP, UDP are)"},
		{func(s *Service) { s.Scheduler = "mh" }, "scheduler mh is not supported by the test data plane (rr, sh are)"},
		{func(s *Service) { s.Flags = lvs.OnePacket }, "one-packet scheduling (ops): not supported by the test data plane"},
		{func(s *Service) { s.Port = 0 }, "port 0 (all-ports services) is not supported"},
		{func(s *Service) { s.Persistence = MaxPersistence + time.Second }, "out of range"},
	} {
		s := svc()
		c.change(&s)
		assert.ErrorContains(t, caps.CheckService(s), c.want)
	}
	for _, c := range []struct {
		change func(*Real)
		want   string
	}{
		{func(r *Real) { r.Forward = lvs.TUN }, "lvs_method TUN is not supported by the test data plane (DR, NAT are)"},
		{func(r *Real) { r.Port = 8080 }, "DR cannot map ports; the real's port must be 80"},
		{func(r *Real) { r.Weight = -1 }, "weight -1 is negative"},
		{func(r *Real) { r.Addr = netip.MustParseAddr("fd00::2") }, "only IPv4 real servers are supported"},
	} {
		r := real
		c.change(&r)
		assert.ErrorContains(t, caps.CheckReal(svc(), r), c.want)
	}
	nat := real
	nat.Forward, nat.Port = lvs.NAT, 8080
	assert.NoError(t, caps.CheckReal(svc(), nat), "NAT maps ports")

	s := svc()
	s.Reals = []Real{real, real}
	assert.EqualError(t, caps.Validate([]Service{s}), "service TCP 10.0.0.1:80: real 10.0.1.1:80 listed twice")
	assert.EqualError(t, caps.Validate([]Service{svc(), svc()}), "service TCP 10.0.0.1:80: listed twice")
}

// FULLNAT's rules: local addresses needed (IPv4, no more than the data
// plane takes, none twice), TOA only where the data plane has it, and a
// data plane without FULLNAT refuses its reals by name.
func TestCapsFULLNAT(t *testing.T) {
	caps := Caps{Name: "the test data plane", Schedulers: []string{"rr"}, Forwards: []lvs.Forward{lvs.DR, lvs.NAT, lvs.FNAT},
		Protocols: []lvs.Protocol{lvs.TCP}, MaxLocalAddrs: 2, TOA: true}
	laddr := netip.MustParseAddr("10.0.0.50")
	svc := func() Service {
		return Service{ServiceKey: ServiceKey{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{laddr}, TOA: true,
			Reals: []Real{{Addr: netip.MustParseAddr("10.0.1.1"), Port: 8080, Weight: 1, Forward: lvs.FNAT}}}
	}
	assert.NoError(t, caps.Validate([]Service{svc()}), "FULLNAT maps ports, as NAT")
	for _, c := range []struct {
		change func(*Service)
		want   string
	}{
		{func(s *Service) { s.LocalAddrs = nil }, "FULLNAT (lvs_method FNAT) needs local addresses"},
		{func(s *Service) { s.LocalAddrs = append(s.LocalAddrs, laddr) }, "local address 10.0.0.50 listed twice"},
		{func(s *Service) {
			s.LocalAddrs = []netip.Addr{laddr, netip.MustParseAddr("10.0.0.51"), netip.MustParseAddr("10.0.0.52")}
		}, "3 local addresses; the test data plane takes at most 2 per service"},
		{func(s *Service) { s.LocalAddrs = []netip.Addr{netip.MustParseAddr("fd00::50")} },
			"local address fd00::50 is IPv6, and no FULLNAT real is: a local address is of its reals' family"},
	} {
		s := svc()
		c.change(&s)
		assert.ErrorContains(t, caps.Validate([]Service{s}), c.want)
	}
	noFNAT := caps
	noFNAT.Forwards, noFNAT.MaxLocalAddrs, noFNAT.TOA = []lvs.Forward{lvs.DR, lvs.NAT}, 0, false
	assert.ErrorContains(t, noFNAT.Validate([]Service{svc()}), "toa (the client's address in a TCP option, for FULLNAT) is not supported by the test data plane")
	s := svc()
	s.TOA = false
	err := noFNAT.Validate([]Service{s})
	assert.ErrorContains(t, err, "lvs_method FNAT is not supported by the test data plane (DR, NAT are)")
	assert.NotContains(t, err.Error(), "local addresses", "no count of local addresses where FULLNAT is refused anyway")
}
