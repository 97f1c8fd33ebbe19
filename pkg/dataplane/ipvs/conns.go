package ipvs

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// Conns implements dataplane.Dataplane: the entries of the kernel's
// connection table that belong to xlb's services, in the kernel's (hash)
// order, as ipvsadm -Lc prints them. Persistence templates are included:
// state NONE, client port 0, the client address masked.
func (v *Dataplane) Conns() ([]dataplane.Conn, error) {
	v.mu.Lock()
	mine := map[netip.AddrPort]bool{}
	for k := range v.owned {
		mine[netip.AddrPortFrom(k.Addr, k.Port)] = true
	}
	v.mu.Unlock()

	path := v.opts.ConnTable
	if path == "" {
		path = "/proc/net/ip_vs_conn"
		if v.opts.NetNS != "" {
			// /proc/net is the namespace of the process's main thread;
			// thread-self's is the namespace inNS entered.
			path = "/proc/thread-self/net/ip_vs_conn"
		}
	}
	var b []byte
	err := inNS(v.opts.NetNS, func() (err error) {
		b, err = os.ReadFile(path)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read IPVS connections: %w", err)
	}
	all, err := parseConns(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("read IPVS connections: %s: %w", path, err)
	}
	out := all[:0]
	for _, c := range all {
		if mine[c.Virtual] {
			out = append(out, c)
		}
	}
	return out, nil
}

// parseConns reads the kernel's /proc/net/ip_vs_conn (ip_vs_conn.c,
// ip_vs_conn_seq_show). After a header line, each line is
//
//	Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires [PEName PEData]
//
// with IPv4 addresses as 8 hex digits in network order, IPv6 addresses in
// full colon form (%pI6), ports as 4 hex digits and Expires in seconds. The
// one file holds both families; the dest's family may differ from the
// client's (a tunnel to an IPv6 real of an IPv4 service).
func parseConns(r io.Reader) ([]dataplane.Conn, error) {
	sc := bufio.NewScanner(r)
	var out []dataplane.Conn
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 && strings.HasPrefix(line, "Pro ") {
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		c, err := parseConn(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseConn(line string) (dataplane.Conn, error) {
	f := strings.Fields(line)
	if len(f) < 9 {
		return dataplane.Conn{}, fmt.Errorf("%d fields, want at least 9: %q", len(f), line)
	}
	proto, err := protoNumber(f[0])
	if err != nil {
		return dataplane.Conn{}, err
	}
	var ap [3]netip.AddrPort
	for i := range ap {
		a, err := procAddr(f[1+2*i])
		if err != nil {
			return dataplane.Conn{}, err
		}
		p, err := strconv.ParseUint(f[2+2*i], 16, 16)
		if err != nil || len(f[2+2*i]) != 4 {
			return dataplane.Conn{}, fmt.Errorf("port %q is not 4 hex digits", f[2+2*i])
		}
		ap[i] = netip.AddrPortFrom(a, uint16(p))
	}
	secs, err := strconv.ParseUint(f[8], 10, 32)
	if err != nil {
		return dataplane.Conn{}, fmt.Errorf("expires %q: %w", f[8], err)
	}
	return dataplane.Conn{
		State:    f[7],
		Protocol: proto,
		Client:   ap[0],
		Virtual:  ap[1],
		Real:     ap[2],
		Expires:  time.Duration(secs) * time.Second,
	}, nil
}

// protoNumber inverts the kernel's ip_vs_proto_name.
func protoNumber(name string) (lvs.Protocol, error) {
	switch name {
	case "TCP":
		return lvs.TCP, nil
	case "UDP":
		return lvs.UDP, nil
	case "SCTP":
		return 132, nil
	case "IP":
		return 0, nil
	case "ICMP":
		return 1, nil
	case "ICMPv6":
		return 58, nil
	}
	if n, ok := strings.CutPrefix(name, "IP_"); ok {
		if p, err := strconv.ParseUint(n, 10, 8); err == nil {
			return lvs.Protocol(p), nil
		}
	}
	return 0, fmt.Errorf("unknown protocol %q", name)
}

func procAddr(s string) (netip.Addr, error) {
	if len(s) == 8 && !strings.Contains(s, ":") {
		v, err := strconv.ParseUint(s, 16, 32)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("address %q is not 8 hex digits", s)
		}
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(v))
		return netip.AddrFrom4(b), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("address %q is neither 8 hex digits nor an IPv6 address", s)
	}
	return a, nil
}

// KernelConns reads the whole connection table of the calling process's
// namespace (/proc/net/ip_vs_conn), every service's: what a director
// taking over from the kernel's IPVS adopts. None, and no error, where
// IPVS is not loaded.
func KernelConns() ([]dataplane.Conn, error) {
	f, err := os.Open("/proc/net/ip_vs_conn")
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read IPVS connections: %w", err)
	}
	defer f.Close()
	cs, err := parseConns(f)
	if err != nil {
		return nil, fmt.Errorf("read IPVS connections: /proc/net/ip_vs_conn: %w", err)
	}
	return cs, nil
}
