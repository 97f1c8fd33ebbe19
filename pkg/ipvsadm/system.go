package ipvsadm

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// System resolves names as ipvsadm does on this host: host names through
// the system's resolver (/etc/hosts, then DNS), IPv4 only as gethostbyname;
// port names from /etc/services for the service's protocol, as
// getservbyname. Each lookup is bounded by Timeout (1 s when zero), so that
// a listing without -n on a host whose DNS does not answer ends, printing
// numbers where names did not come; ipvsadm itself waits for the resolver.
type System struct {
	Timeout time.Duration
	// Services is the services file; /etc/services when empty.
	Services string

	once     sync.Once
	byName   map[svcKey]uint16
	byNumber map[portKey]string
}

type svcKey struct {
	name, proto string
}

type portKey struct {
	port  uint16
	proto string
}

// Parser is a Parser that accepts the names s resolves.
func (s *System) Parser() Parser {
	return Parser{LookupHost: s.LookupHost, LookupPort: s.LookupPort}
}

func (s *System) ctx() (context.Context, context.CancelFunc) {
	t := s.Timeout
	if t == 0 {
		t = time.Second
	}
	return context.WithTimeout(context.Background(), t)
}

// LookupHost is gethostbyname: the first IPv4 address of name.
func (s *System) LookupHost(name string) (netip.Addr, bool) {
	ctx, cancel := s.ctx()
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", name)
	if err != nil || len(ips) == 0 {
		return netip.Addr{}, false
	}
	return ips[0].Unmap(), true
}

// LookupPort is getservbyname(name, proto), names and aliases alike.
func (s *System) LookupPort(name string, p lvs.Protocol) (uint16, bool) {
	s.once.Do(s.load)
	port, ok := s.byName[svcKey{name, servicesProto(p)}]
	return port, ok
}

// HostName is gethostbyaddr's h_name: the first name of the address.
func (s *System) HostName(a netip.Addr) (string, bool) {
	ctx, cancel := s.ctx()
	defer cancel()
	names, err := net.DefaultResolver.LookupAddr(ctx, a.String())
	if err != nil || len(names) == 0 {
		return "", false
	}
	return strings.TrimSuffix(names[0], "."), true
}

// PortName is getservbyport: the first name of the port for proto.
func (s *System) PortName(port uint16, p lvs.Protocol) (string, bool) {
	s.once.Do(s.load)
	name, ok := s.byNumber[portKey{port, servicesProto(p)}]
	return name, ok
}

// servicesProto is p as /etc/services names it.
func servicesProto(p lvs.Protocol) string {
	switch p {
	case lvs.UDP:
		return "udp"
	case lvs.SCTP:
		return "sctp"
	}
	return "tcp"
}

// load reads the services file: "name port/proto [aliases...] [# comment]";
// the first line for a port names it, as in glibc's files backend.
func (s *System) load() {
	s.byName, s.byNumber = map[svcKey]uint16{}, map[portKey]string{}
	path := s.Services
	if path == "" {
		path = "/etc/services"
	}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		num, proto, ok := strings.Cut(fields[1], "/")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(num, 10, 16)
		if err != nil {
			continue
		}
		pk := portKey{uint16(port), proto}
		if _, seen := s.byNumber[pk]; !seen {
			s.byNumber[pk] = fields[0]
		}
		for _, name := range append([]string{fields[0]}, fields[2:]...) {
			if _, seen := s.byName[svcKey{name, proto}]; !seen {
				s.byName[svcKey{name, proto}] = uint16(port)
			}
		}
	}
}
