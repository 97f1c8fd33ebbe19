package testutil

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// DR is a one-LAN direct-routing topology: a client, a director and N
// reals, each in its own namespace, on a bridge in a switch namespace.
//
//	client 10.77.0.1 ─┐
//	director 10.77.0.2 ┼─ br0 (switch ns)
//	real i 10.77.0.(11+i) ┘   VIP 10.77.1.100 on each real's lo
//
// The client routes the VIP via the director (as an upstream router sends a
// VIP to the VRRP master). Reals answer the client directly.
type DR struct {
	Switch, Client, Director *NS
	// Backup is the second director (DROptions.Backup), 10.77.0.3.
	Backup       *NS
	Reals        []*NS
	VIP          netip.Addr
	ClientAddr   netip.Addr
	DirectorAddr netip.Addr
	RealAddrs    []netip.Addr
	// DirectorIf is the director's interface, where xlb attaches.
	DirectorIf string
	// NATGateway is the NAT reals' router with a backup director
	// (10.77.0.254): the VRRP instance must hold it with the VIP.
	NATGateway netip.Addr

	closers []func() error
	web     []realWeb // each real's HTTP servers
}

// realWeb is a real's HTTP servers and their ports, IPv4's and IPv6's (0:
// none).
type realWeb struct {
	srv  [2]*http.Server
	port [2]int
}

// DROptions shape a DR topology.
type DROptions struct {
	Reals int
	// Native prepares the switch side for native XDP on the director:
	// XDP_TX to a veth needs an XDP program on its peer.
	Native bool
	// NAT makes the reals NAT reals: no VIP on lo, default route via the
	// director (which forwards), and the client in another subnet
	// (10.77.5.1, via the director's 10.77.5.2) so that replies must
	// cross the director.
	NAT bool
	// Backup adds a second director (10.77.0.3) for VRRP, and the client
	// reaches the VIP on its LAN by ARP, as it would through an upstream
	// router: whichever director holds the VIP answers. With NAT, the
	// directors are 10.77.5.2 and .3 on the client's side too, and the
	// reals' default route is NATGateway, an address the VRRP instance
	// moves with the VIP (as an LVS-NAT pair's inner gateway is).
	Backup bool
}

// NewDR builds the topology. Close removes all of it.
func NewDR(opts DROptions) (_ *DR, err error) {
	id := Suffix()
	t := &DR{
		VIP:          netip.MustParseAddr("10.77.1.100"),
		ClientAddr:   netip.MustParseAddr("10.77.0.1"),
		DirectorAddr: netip.MustParseAddr("10.77.0.2"),
		DirectorIf:   "eth0",
	}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	mk := func(role string) (*NS, error) {
		ns, err := NewNS("xlb-" + id + "-" + role)
		if err != nil {
			return nil, err
		}
		t.closers = append(t.closers, ns.Close)
		_ = ns.Sysctl("net.ipv6.conf.all.disable_ipv6", "1")
		return ns, nil
	}
	if t.Switch, err = mk("sw"); err != nil {
		return nil, err
	}
	if err = t.Switch.IP("link", "add", "br0", "type", "bridge"); err != nil {
		return nil, err
	}
	if err = t.Switch.IP("link", "set", "br0", "up"); err != nil {
		return nil, err
	}
	plug := func(ns *NS, port string, addr netip.Addr) error {
		if err := ns.IP("link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", t.Switch.Name); err != nil {
			return err
		}
		if err := t.Switch.IP("link", "set", port, "master", "br0", "up"); err != nil {
			return err
		}
		if err := ns.IP("addr", "add", addr.String()+"/24", "dev", "eth0"); err != nil {
			return err
		}
		return ns.IP("link", "set", "eth0", "up")
	}
	if t.Client, err = mk("client"); err != nil {
		return nil, err
	}
	gw := t.DirectorAddr
	if opts.NAT {
		t.ClientAddr, gw = netip.MustParseAddr("10.77.5.1"), netip.MustParseAddr("10.77.5.2")
	}
	if err = plug(t.Client, "p-client", t.ClientAddr); err != nil {
		return nil, err
	}
	if opts.Backup {
		err = t.Client.IP("route", "add", t.VIP.String()+"/32", "dev", "eth0")
	} else {
		err = t.Client.IP("route", "add", t.VIP.String()+"/32", "via", gw.String())
	}
	if err != nil {
		return nil, err
	}
	// Frames the client sends cross XDP on the director: no checksum or
	// segmentation offload, which XDP cannot carry through a redirect.
	if err = t.Client.Exec("ethtool", "-K", "eth0", "tx", "off", "tso", "off", "gso", "off"); err != nil {
		return nil, err
	}
	if t.Director, err = mk("director"); err != nil {
		return nil, err
	}
	if err = plug(t.Director, "p-director", t.DirectorAddr); err != nil {
		return nil, err
	}
	natSide := func(ns *NS, addr netip.Addr) error {
		if err := ns.IP("addr", "add", addr.String()+"/24", "dev", "eth0"); err != nil {
			return err
		}
		for _, kv := range [][2]string{{"net.ipv4.ip_forward", "1"}, {"net.ipv4.conf.all.send_redirects", "0"}, {"net.ipv4.conf.eth0.send_redirects", "0"}} {
			if err := ns.Sysctl(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	}
	if opts.NAT {
		if err = natSide(t.Director, gw); err != nil {
			return nil, err
		}
	}
	realGW := t.DirectorAddr
	if opts.Backup {
		if t.Backup, err = mk("backup"); err != nil {
			return nil, err
		}
		if err = plug(t.Backup, "p-backup", netip.MustParseAddr("10.77.0.3")); err != nil {
			return nil, err
		}
		if opts.NAT {
			if err = natSide(t.Backup, netip.MustParseAddr("10.77.5.3")); err != nil {
				return nil, err
			}
			t.NATGateway = netip.MustParseAddr("10.77.0.254")
			realGW = t.NATGateway
		}
	}
	if opts.Native {
		if err = t.attachPass(t.Switch, "p-director"); err != nil {
			return nil, err
		}
		if opts.Backup {
			if err = t.attachPass(t.Switch, "p-backup"); err != nil {
				return nil, err
			}
		}
	}
	for i := range opts.Reals {
		ns, err := mk(fmt.Sprintf("r%d", i+1))
		if err != nil {
			return nil, err
		}
		addr := netip.AddrFrom4([4]byte{10, 77, 0, byte(11 + i)})
		if err := plug(ns, fmt.Sprintf("p-r%d", i+1), addr); err != nil {
			return nil, err
		}
		if opts.NAT {
			// The NAT real: replies go back through the director,
			// whole (no offloads: they cross XDP).
			if err := ns.IP("route", "add", "default", "via", realGW.String()); err != nil {
				return nil, err
			}
			if err := ns.Exec("ethtool", "-K", "eth0", "tx", "off", "tso", "off", "gso", "off"); err != nil {
				return nil, err
			}
			t.Reals = append(t.Reals, ns)
			t.RealAddrs = append(t.RealAddrs, addr)
			continue
		}
		// The DR real: VIP on lo, never answering ARP for it.
		if err := ns.IP("addr", "add", t.VIP.String()+"/32", "dev", "lo"); err != nil {
			return nil, err
		}
		for _, kv := range [][2]string{
			{"net.ipv4.conf.all.arp_ignore", "1"}, {"net.ipv4.conf.all.arp_announce", "2"},
			{"net.ipv4.conf.eth0.arp_ignore", "1"}, {"net.ipv4.conf.eth0.arp_announce", "2"},
		} {
			if err := ns.Sysctl(kv[0], kv[1]); err != nil {
				return nil, err
			}
		}
		t.Reals = append(t.Reals, ns)
		t.RealAddrs = append(t.RealAddrs, addr)
	}
	return t, nil
}

// attachPass attaches an XDP_PASS program in native mode to ifname in ns.
func (t *DR) attachPass(ns *NS, ifname string) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* XDP_PASS */), asm.Return()},
	})
	if err != nil {
		return fmt.Errorf("load xdp pass program: %w", err)
	}
	defer prog.Close()
	return ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifi.Index, Flags: link.XDPDriverMode})
		if err != nil {
			return fmt.Errorf("attach xdp pass to %s: %w", ifname, err)
		}
		t.closers = append(t.closers, l.Close)
		return nil
	})
}

// Close removes every namespace, program and server of the topology.
func (t *DR) Close() error {
	var errs []error
	for i := len(t.closers) - 1; i >= 0; i-- {
		errs = append(errs, t.closers[i]())
	}
	t.closers = nil
	return errors.Join(errs...)
}

// ServeHTTP starts an HTTP server on port in each real. Each answers with
// its own name ("r1", "r2", ...) so a client can tell who served it;
// /bytes/N serves N bytes of Pattern, and a POST to /sha256 answers
// "rN HEX", the SHA-256 of what was uploaded.
func (t *DR) ServeHTTP(port int) error { return t.serveHTTP(port, 0) }

// serveHTTP starts each real's HTTP server of family f (0: IPv4, 1:
// IPv6) on port.
func (t *DR) serveHTTP(port, f int) error {
	if t.web == nil {
		t.web = make([]realWeb, len(t.Reals))
		t.closers = append(t.closers, func() error {
			for _, w := range t.web {
				for _, s := range w.srv {
					if s != nil {
						s.Close()
					}
				}
			}
			return nil
		})
	}
	for i := range t.Reals {
		t.web[i].port[f] = port
		if err := t.startHTTP(i, f); err != nil {
			return err
		}
	}
	return nil
}

// StopHTTP stops real i's HTTP servers (0-based), IPv4's and IPv6's: its
// port then refuses connections.
func (t *DR) StopHTTP(i int) error {
	var errs []error
	for f, s := range t.web[i].srv {
		if s != nil {
			errs = append(errs, s.Close())
			t.web[i].srv[f] = nil
		}
	}
	return errors.Join(errs...)
}

// RestartHTTP starts real i's HTTP servers again (0-based).
func (t *DR) RestartHTTP(i int) error {
	for f, port := range t.web[i].port {
		if port != 0 && t.web[i].srv[f] == nil {
			if err := t.startHTTP(i, f); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *DR) startHTTP(i, f int) error {
	network, addr := "tcp4", fmt.Sprintf("0.0.0.0:%d", t.web[i].port[f])
	if f == 1 {
		network, addr = "tcp6", fmt.Sprintf("[::]:%d", t.web[i].port[f])
	}
	l, err := t.Reals[i].Listen(network, addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: realHandler(fmt.Sprintf("r%d", i+1)), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.web[i].srv[f] = srv
	return nil
}

// ServeHTTPIn starts a real's HTTP server (as ServeHTTP's: it answers
// name, /peer, /sha256, /bytes/N) on port in ns, over network (tcp4 or
// tcp6), for a real outside the topology; it stops when the test ends.
func ServeHTTPIn(t testing.TB, ns *NS, network, name string, port int) {
	t.Helper()
	addr := fmt.Sprintf("0.0.0.0:%d", port)
	if network == "tcp6" {
		addr = fmt.Sprintf("[::]:%d", port)
	}
	l, err := ns.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: realHandler(name), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// realHandler is a real's HTTP server as ServeHTTP describes it: its
// name, /peer, /sha256 and /bytes/N.
func realHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/peer" {
			// Who the real's connection came from, as the real
			// sees it.
			fmt.Fprintf(w, "%s %s", name, r.RemoteAddr)
			return
		}
		if r.URL.Path == "/sha256" {
			// An upload's SHA-256, in hex, and who took it.
			h := sha256.New()
			if _, err := io.Copy(h, r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%s %x", name, h.Sum(nil))
			return
		}
		var n int
		if _, err := fmt.Sscanf(r.URL.Path, "/bytes/%d", &n); err == nil {
			// n bytes of a pattern the client can check.
			w.Header().Set("Content-Length", fmt.Sprint(n))
			_, _ = io.Copy(w, io.LimitReader(Pattern(), int64(n)))
			return
		}
		io.WriteString(w, name)
	})
}

// HTTPClient makes one new TCP connection per request, from the client
// namespace.
func (t *DR) HTTPClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext:       t.Client.DialContext,
			DisableKeepAlives: true,
		},
	}
}

// Get fetches http://VIP:port/ and returns the body (the real's name).
func Get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

// Pattern is an endless deterministic byte stream, what /bytes/N serves.
func Pattern() io.Reader { return &pattern{} }

type pattern struct{ n uint64 }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.n*2654435761>>13) ^ byte(p.n)
		p.n++
	}
	return len(b), nil
}

// ServeUDP starts a UDP responder on port in each real: it answers each
// datagram with "rN:" and the datagram.
func (t *DR) ServeUDP(port int) error {
	return t.ServeUDPOn(netip.IPv4Unspecified(), port)
}

// ServeUDPOn is ServeUDP with each real's socket bound to addr: a DR or
// TUN real's server binds the VIP, so that its answers come from it.
func (t *DR) ServeUDPOn(addr netip.Addr, port int) error {
	for i, ns := range t.Reals {
		network := "udp4"
		if addr.Is6() {
			network = "udp6"
		}
		c, err := ns.ListenPacket(network, netip.AddrPortFrom(addr, uint16(port)).String())
		if err != nil {
			return err
		}
		t.closers = append(t.closers, c.Close)
		name := fmt.Sprintf("r%d:", i+1)
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = c.WriteTo(append([]byte(name), buf[:n]...), from)
			}
		}()
	}
	return nil
}

// NewDRServing is the DR topology most end-to-end tests start from: root
// and a kernel the XDP data plane runs on (else the test is skipped,
// naming why), two reals serving HTTP on port 80, and the topology gone
// when the test ends.
func NewDRServing(t testing.TB) *DR {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	RequireXDPKernel(t)
	topo, err := NewDR(DROptions{Reals: 2, Native: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topo.Close() })
	if err := topo.ServeHTTP(80); err != nil {
		t.Fatal(err)
	}
	return topo
}

// TunnelReal makes real i (0-based) an IPVS TUN real as the LVS HOWTO and
// keepalived users set one up, for tunnel type "ipip", "gue" (port: the
// fou port it receives on) or "gre": the VIP on the kernel's tunnel device
// (tunl0, behind a fou port for GUE; gre0), not on lo, and reverse-path
// filtering off (the decapsulated packet's source, the client, is not
// routed through the tunnel). The kernel needs ipip, fou and ip_gre
// (RequireTunnelDevices).
func (t *DR) TunnelReal(i int, typ string, port uint16) error {
	return t.tunnelReal(i, t.VIP, false, typ, port)
}
