// Package bgpd announces this director's VIPs to routers over BGP, for
// scale-out behind ECMP: every director that announces a VIP gets a share
// of its connections, and the scheduler (mh, sh, dh: the same table on
// every director) sends each to the same real wherever it lands.
//
// The speaker is GoBGP (github.com/osrg/gobgp/v4), in this process: no VIP
// outlives its director. Its configuration is GoBGP's own file (gobgpd's
// TOML: global, neighbors with timers, BFD, afi-safis, peer-groups,
// policies), read as gobgpd reads it; xlb adds only the announcements: a
// /32 or /128 for each VIP it governs, while every service of the VIP has
// quorum, with this director's address on the session as the next hop. A
// VIP announced here is a VIP VRRP does not govern (the daemon refuses a
// configuration in which both would).
//
// On Stop the speaker drains: it withdraws every VIP, keeps forwarding for
// the drain time (the routers move new and, with sloppy_tcp, established
// connections to the other directors meanwhile), then says goodbye to its
// peers (a BGP CEASE). A killed director's TCP sessions close with it, and a
// hung one's expire with the routers' hold timers (or BFD).
package bgpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgpconfig "github.com/osrg/gobgp/v4/pkg/config"
	"github.com/osrg/gobgp/v4/pkg/config/oc"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/vishvananda/netlink"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/control"
)

// Options configure a Speaker.
type Options struct {
	// ConfigFile is GoBGP's configuration (TOML, as gobgpd -f reads it).
	ConfigFile string
	// VIPs limits what the speaker announces to VIPs in these prefixes;
	// nil: every virtual server's VIP.
	VIPs []netip.Prefix
	// Drain is how long Stop keeps forwarding after withdrawing.
	Drain time.Duration
	// Quorum says, for each VIP, whether every service of it has quorum
	// now (the director's); a VIP it does not name has none.
	Quorum func() map[netip.Addr]bool
	// OnActive is told which governed VIPs this director serves: all of
	// them, from Load until Stop has drained (the routers decide where
	// traffic goes; whatever reaches this director is forwarded).
	OnActive func(map[netip.Addr]bool)
	// HostVIPs puts each governed VIP on the loopback interface while it
	// is governed: the IPVS data plane sees only packets to local
	// addresses (XDP needs none).
	HostVIPs bool
	// Interval is how often quorum is looked at (200 ms).
	Interval time.Duration
	Logger   *slog.Logger
}

// ReadConfig reads and checks a GoBGP configuration file as gobgpd does (an
// unknown key is an error, naming it).
func ReadConfig(path string) (*oc.BgpConfigSet, error) {
	cfg, err := gobgpconfig.ReadConfigFile(path, "toml")
	if err != nil {
		return nil, fmt.Errorf("--bgp-config %s: %w", path, err)
	}
	if cfg.Global.Config.As == 0 {
		return nil, fmt.Errorf("--bgp-config %s: [global.config] has no as", path)
	}
	if len(cfg.Neighbors) == 0 && len(cfg.DynamicNeighbors) == 0 {
		return nil, fmt.Errorf("--bgp-config %s: no [[neighbors]] to announce to", path)
	}
	return cfg, nil
}

// Speaker is the BGP VIP owner.
type Speaker struct {
	o   Options
	log *slog.Logger
	cfg *oc.BgpConfigSet
	s   *server.BgpServer

	mu        sync.Mutex
	governed  map[netip.Addr]bool
	announced map[netip.Addr]bool
	why       map[netip.Addr]string // why a governed VIP is not announced
	peers     map[netip.Addr]peerState
	onHost    map[netip.Addr]bool // VIPs HostVIPs put on lo
	draining  bool
	started   bool
	stop      chan struct{}
	done      chan struct{}
	wake      chan struct{}
	cancel    context.CancelFunc
}

type peerState struct {
	state string
	since time.Time
	why   string
}

// New reads the configuration and starts the speaker: its sessions come up,
// and nothing is announced before the first Load. A configuration GoBGP
// refuses (a neighbour it cannot add, say) is an error here, not a speaker
// that runs announcing nothing.
func New(o Options) (*Speaker, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Interval == 0 {
		o.Interval = 200 * time.Millisecond
	}
	cfg, err := ReadConfig(o.ConfigFile)
	if err != nil {
		return nil, err
	}
	sp := &Speaker{o: o, log: o.Logger.With("owner", "bgp"), cfg: cfg, governed: map[netip.Addr]bool{},
		announced: map[netip.Addr]bool{}, why: map[netip.Addr]string{}, peers: map[netip.Addr]peerState{}, onHost: map[netip.Addr]bool{},
		stop: make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	if err := sp.start(); err != nil {
		return nil, err
	}
	return sp, nil
}

// Governs implements the daemon's VIPOwner: every virtual server's VIP in
// Options.VIPs.
func (sp *Speaker) Governs(cfg *config.Config) map[netip.Addr]bool {
	return Governed(cfg, sp.o.VIPs)
}

// Governed are the VIPs of cfg's virtual servers within prefixes (nil:
// all), those a speaker with them announces.
func Governed(cfg *config.Config, prefixes []netip.Prefix) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for i := range cfg.VirtualServers {
		for _, e := range cfg.VirtualServers[i].Services() {
			if e.FWMark != 0 || !e.Addr.IsValid() || e.Addr.IsUnspecified() {
				continue
			}
			if prefixes == nil || slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(e.Addr) }) {
				out[e.Addr] = true
			}
		}
	}
	return out
}

// Load implements VIPOwner: the first starts the speaker.
func (sp *Speaker) Load(cfg *config.Config) {
	governed := sp.Governs(cfg)
	sp.mu.Lock()
	sp.governed = governed
	first := !sp.started
	sp.started = true
	draining := sp.draining
	sp.mu.Unlock()
	if !draining && sp.o.OnActive != nil {
		sp.o.OnActive(maps.Clone(governed))
	}
	if first {
		go sp.run()
	}
	sp.kick()
}

func (sp *Speaker) start() error {
	lvl := new(slog.LevelVar)
	lvl.Set(slog.LevelWarn)
	sp.s = server.NewBgpServer(server.LoggerOption(sp.log.With("gobgp", true), lvl))
	go sp.s.Serve()
	ctx, cancel := context.WithCancel(context.Background())
	sp.cancel = cancel
	err := sp.s.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
			if ev.Type != apiutil.PEER_EVENT_INIT && ev.Type != apiutil.PEER_EVENT_STATE {
				return
			}
			st := ev.Peer.State
			p := peerState{state: fsmName(st.SessionState), since: at}
			if st.DisconnectReason != api.PeerState_DISCONNECT_REASON_UNSPECIFIED {
				p.why = fmt.Sprintf("%s %s", st.DisconnectReason, st.DisconnectMessage)
			}
			sp.mu.Lock()
			prev := sp.peers[st.NeighborAddress]
			sp.peers[st.NeighborAddress] = p
			sp.mu.Unlock()
			if prev.state != p.state {
				sp.log.Info("bgp peer", "peer", st.NeighborAddress.String(), "state", p.state, "reason", p.why)
			}
		},
	}, server.WatchPeer())
	if err != nil {
		sp.s.Stop()
		return fmt.Errorf("watch peers: %w", err)
	}
	if _, err := gobgpconfig.InitialConfig(ctx, sp.s, sp.cfg, false); err != nil {
		sp.s.Stop()
		return fmt.Errorf("--bgp-config %s: %w", sp.o.ConfigFile, err)
	}
	sp.log.Info("bgp speaker started", "as", sp.cfg.Global.Config.As, "router_id", sp.cfg.Global.Config.RouterId.String(), "neighbors", len(sp.cfg.Neighbors))
	return nil
}

func fsmName(s bgp.FSMState) string {
	switch s {
	case bgp.BGP_FSM_IDLE:
		return "idle"
	case bgp.BGP_FSM_CONNECT:
		return "connect"
	case bgp.BGP_FSM_ACTIVE:
		return "active"
	case bgp.BGP_FSM_OPENSENT:
		return "opensent"
	case bgp.BGP_FSM_OPENCONFIRM:
		return "openconfirm"
	case bgp.BGP_FSM_ESTABLISHED:
		return "established"
	}
	return fmt.Sprintf("state %d", s)
}

// kick makes the run loop look now.
func (sp *Speaker) kick() {
	select {
	case sp.wake <- struct{}{}:
	default:
	}
}

// run announces and withdraws as quorum and the governed set change.
func (sp *Speaker) run() {
	defer close(sp.done)
	t := time.NewTicker(sp.o.Interval)
	defer t.Stop()
	for {
		sp.sync()
		select {
		case <-sp.stop:
			return
		case <-t.C:
		case <-sp.wake:
		}
	}
}

// sync makes the announcements what governed, quorum and draining say.
func (sp *Speaker) sync() {
	var quorum map[netip.Addr]bool
	if sp.o.Quorum != nil {
		quorum = sp.o.Quorum()
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	want := map[netip.Addr]bool{}
	why := map[netip.Addr]string{}
	for vip := range sp.governed {
		switch {
		case sp.draining:
			why[vip] = "draining: the director is stopping"
		case quorum != nil && !quorum[vip]:
			why[vip] = "a service of the VIP has lost quorum"
		default:
			want[vip] = true
		}
	}
	sp.why = why
	if sp.o.HostVIPs {
		sp.hostVIPs(sp.governed)
	}
	add, del := missing(want, sp.announced), missing(sp.announced, want)
	if len(add) > 0 {
		if err := sp.announce(add); err != nil {
			sp.log.Error("bgp announce", "vips", add, "error", err)
		} else {
			for _, v := range add {
				sp.announced[v] = true
			}
			sp.log.Info("bgp announced", "vips", add)
		}
	}
	if len(del) > 0 {
		if err := sp.withdraw(del); err != nil {
			sp.log.Error("bgp withdraw", "vips", del, "error", err)
		} else {
			for _, v := range del {
				delete(sp.announced, v)
			}
			reason := why[del[0]]
			if reason == "" {
				reason = "no longer a virtual server's VIP"
			}
			sp.log.Info("bgp withdrawn", "vips", del, "reason", reason)
		}
	}
}

// missing are the addresses in a and not in b, in order.
func missing(a, b map[netip.Addr]bool) []netip.Addr {
	var out []netip.Addr
	for v := range a {
		if !b[v] {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// hostPath is vip's /32 or /128 with an unspecified next hop, which GoBGP
// replaces with its own address on each session.
func hostPath(vip netip.Addr) (*apiutil.Path, error) {
	vip = vip.Unmap()
	nlri, err := bgp.NewIPAddrPrefix(netip.PrefixFrom(vip, vip.BitLen()))
	if err != nil {
		return nil, err
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if vip.Is4() {
		nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, err
		}
		return &apiutil.Path{Family: bgp.RF_IPv4_UC, Nlri: nlri, Attrs: append(attrs, nh)}, nil
	}
	mp, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv6_UC, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
	if err != nil {
		return nil, err
	}
	return &apiutil.Path{Family: bgp.RF_IPv6_UC, Nlri: nlri, Attrs: append(attrs, mp)}, nil
}

func paths(vips []netip.Addr) ([]*apiutil.Path, error) {
	var out []*apiutil.Path
	for _, v := range vips {
		p, err := hostPath(v)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (sp *Speaker) announce(vips []netip.Addr) error {
	ps, err := paths(vips)
	if err != nil {
		return err
	}
	res, err := sp.s.AddPath(apiutil.AddPathRequest{Paths: ps})
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range res {
		if r.Error != nil {
			errs = append(errs, r.Error)
		}
	}
	return errors.Join(errs...)
}

func (sp *Speaker) withdraw(vips []netip.Addr) error {
	ps, err := paths(vips)
	if err != nil {
		return err
	}
	return sp.s.DeletePath(apiutil.DeletePathRequest{Paths: ps})
}

// Status implements VIPOwner: each peer's session, each VIP's
// announcement.
func (sp *Speaker) Status(st *control.Status) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	b := &control.BGP{AS: sp.cfg.Global.Config.As, RouterID: sp.cfg.Global.Config.RouterId.String(), Draining: sp.draining}
	for _, a := range slices.SortedFunc(maps.Keys(sp.peers), netip.Addr.Compare) {
		p := sp.peers[a]
		b.Peers = append(b.Peers, control.BGPPeer{Addr: a.String(), State: p.state, Since: p.since, Reason: p.why})
	}
	for _, v := range slices.SortedFunc(maps.Keys(sp.governed), netip.Addr.Compare) {
		b.VIPs = append(b.VIPs, control.BGPVIP{VIP: v.String(), Announced: sp.announced[v], Reason: sp.why[v]})
	}
	st.BGP = b
}

// Stop implements VIPOwner: withdraw everything, keep forwarding for the
// drain time, then close the sessions.
func (sp *Speaker) Stop() {
	sp.mu.Lock()
	loaded := sp.started
	sp.draining = true
	sp.mu.Unlock()
	if !loaded {
		// Never loaded: nothing was announced.
		sp.cancel()
		sp.s.Stop()
		return
	}
	sp.sync()
	if sp.o.Drain > 0 {
		sp.log.Info("draining: VIPs withdrawn, forwarding goes on", "for", sp.o.Drain)
		time.Sleep(sp.o.Drain)
	}
	close(sp.stop)
	<-sp.done
	sp.cancel()
	sp.s.Stop()
	if sp.o.HostVIPs {
		sp.mu.Lock()
		sp.hostVIPs(nil)
		sp.mu.Unlock()
	}
	if sp.o.OnActive != nil {
		sp.o.OnActive(nil)
	}
	sp.log.Info("bgp speaker stopped")
}

// hostVIPs makes the VIPs on lo (those it put there) want: each added as a
// host address, each it added and no longer wants removed. sp.mu held.
func (sp *Speaker) hostVIPs(want map[netip.Addr]bool) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		sp.log.Error("bgp: the VIPs cannot go on lo", "error", err)
		return
	}
	addr := func(v netip.Addr) *netlink.Addr {
		return &netlink.Addr{IPNet: &net.IPNet{IP: v.AsSlice(), Mask: net.CIDRMask(v.BitLen(), v.BitLen())}}
	}
	for v := range want {
		if sp.onHost[v] {
			continue
		}
		if err := netlink.AddrReplace(lo, addr(v)); err != nil {
			sp.log.Error("bgp: put the VIP on lo", "vip", v.String(), "error", err)
			continue
		}
		sp.onHost[v] = true
		sp.log.Info("bgp: VIP on lo, for IPVS", "vip", v.String())
	}
	for v := range sp.onHost {
		if want[v] {
			continue
		}
		if err := netlink.AddrDel(lo, addr(v)); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			sp.log.Error("bgp: take the VIP off lo", "vip", v.String(), "error", err)
		}
		delete(sp.onHost, v)
	}
}
