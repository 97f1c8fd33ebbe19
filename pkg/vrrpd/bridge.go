package vrrpd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/vrrp"
)

// A Bridge carries a hitless restart's MASTER instances across the new
// process's start. The handing-off process's last advert starts its
// backups' master-down timers (three adverts and a skew: 3.4 s at
// advert_int 1 and priority 150); the new process used to advertise only
// once its data plane was loaded, and verifying the programs takes 2 s
// on a loaded host and 15-52 s on 6.1 in a TCG VM: past that, the backup
// took over from a director that was forwarding all along (the pinned
// programs do). The Bridge advertises for each resumed instance from the
// moment the configuration is read, by a vrrp.Runner of the instance's
// own configuration that resumes MASTER and does little else a Runner
// does for its owner: no gratuitous ARPs, no notify scripts, no data
// plane roles (the VIPs and the roles are as the process before left
// them). It hears its peers as a Runner does: one with the better claim
// (a higher priority, RFC 5798 6.4.3) takes mastership from it, the
// bridge removes the VIPs, and the instance then starts BACKUP as any
// instance that does not resume.
type Bridge struct {
	log     *slog.Logger
	mu      sync.Mutex
	runners map[string]*vrrp.Runner
}

// NewBridge starts advertising for the instances of cfg named in resume.
// An instance whose socket cannot be opened here is left to the
// Supervisor (it resumes when it starts, as without a bridge).
func NewBridge(cfg *config.Config, resume map[string]bool, log *slog.Logger) *Bridge {
	b := &Bridge{log: log, runners: map[string]*vrrp.Runner{}}
	for i := range cfg.Instances {
		in := &cfg.Instances[i]
		if !resume[in.Name] {
			continue
		}
		ifname, conn, err := openInstance(in, existingVMAC)
		if err != nil {
			log.Warn("handoff: no adverts until the instance starts", "instance", in.Name, "error", err)
			continue
		}
		rc := runnerConfig(in, conn, log)
		rc.Resume = true
		// Its VIPs are on the interface: kept while it is MASTER, removed
		// if a better peer takes over (the data plane's roles are left
		// to the Supervisor).
		rc.Addrs = roleVIPs{name: in.Name, inner: vrrp.NetlinkVIPs{Link: ifname}, excluded: excludedOf(*in)}
		name := in.Name
		rc.OnNotify = func(n vrrp.Notify) {
			if n.State != vrrp.StateMaster {
				log.Warn("handoff: a peer took MASTER while this xlb started; the instance starts BACKUP", "instance", name,
					"state", n.State.String())
			}
		}
		r, err := vrrp.NewRunner(rc)
		if err != nil {
			conn.Close()
			log.Warn("handoff: no adverts until the instance starts", "instance", name, "error", err)
			continue
		}
		r.Start()
		b.runners[name] = r
		log.Info("handoff: advertising as MASTER while the data plane loads", "instance", name)
	}
	return b
}

// end stops the bridge's runner of an instance (without a priority-0
// advert: one last ordinary one, as any handoff) and says whether the
// instance resumes MASTER: whether it was MASTER when it stopped. An
// instance the bridge did not run resumes.
func (b *Bridge) end(name string) bool {
	b.mu.Lock()
	r := b.runners[name]
	delete(b.runners, name)
	b.mu.Unlock()
	if r == nil {
		return true
	}
	return r.Handoff()
}

// Close gives up what no Supervisor took, as a stopping instance does: a
// priority-0 advert from a MASTER (its backups take over at once, not a
// master-down interval later) and its VIPs removed. A process that fails
// to start closes it; one that runs has ended every runner.
func (b *Bridge) Close() {
	if b == nil {
		return
	}
	b.mu.Lock()
	runners := b.runners
	b.runners = nil
	b.mu.Unlock()
	for name, r := range runners {
		r.Stop()
		b.log.Info("handoff: stopped advertising (this xlb did not start)", "instance", name)
	}
}

// existingVMAC is a use_vmac instance's interface as a handoff left it
// (the bridge makes none).
func existingVMAC(in *config.VRRPInstance) (string, error) {
	name := VMACName(in)
	if _, err := net.InterfaceByName(name); err != nil {
		return "", fmt.Errorf("use_vmac: %s: %w", name, err)
	}
	return name, nil
}

// openInstance opens the socket an instance speaks on: on its
// interface, or with use_vmac on the VMAC that vmac names (its adverts
// carrying the parent's primary address, as keepalived's do). It returns
// the interface's name.
func openInstance(in *config.VRRPInstance, vmac func(*config.VRRPInstance) (string, error)) (string, *vrrp.Conn, error) {
	ifname, srcIP := in.Interface, in.UnicastSrcIP
	if in.UseVMAC {
		name, err := vmac(in)
		if err != nil {
			return "", nil, err
		}
		ifname = name
		if !srcIP.IsValid() {
			if srcIP, err = vrrp.PrimaryIPv4(in.Interface); err != nil {
				return "", nil, err
			}
		}
	}
	var peers []netip.Addr
	for _, p := range in.UnicastPeers {
		peers = append(peers, p.Addr)
	}
	// An IPv6 instance speaks from the link-local address, which is
	// tentative for about a second after the link comes up (DAD): wait
	// for it a little, as keepalived waits in FAULT.
	for try := 0; ; try++ {
		conn, err := vrrp.New(ifname, vrrp.ConnConfig{IPv6: in.IsIPv6(), SourceIP: srcIP, Peers: peers})
		if err == nil || !errors.Is(err, vrrp.ErrNoSource) || try == 30 {
			return ifname, conn, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runnerConfig is what a Runner of in speaks and checks: its machine,
// VIPs, authentication and peers, on conn; its I/O errors and dropped
// adverts logged to log.
func runnerConfig(in *config.VRRPInstance, conn *vrrp.Conn, log *slog.Logger) vrrp.RunnerConfig {
	var vips []netip.Prefix
	for _, ip := range in.VirtualIPs {
		vips = append(vips, ip.Prefix)
	}
	var peers []vrrp.UnicastPeer
	for _, p := range in.UnicastPeers {
		peers = append(peers, vrrp.UnicastPeer{Addr: p.Addr, MinTTL: uint8(p.MinTTL), MaxTTL: uint8(p.MaxTTL)})
	}
	auth := vrrp.AuthNone
	if in.AuthType == config.AuthPass {
		auth = vrrp.AuthPass
	}
	return vrrp.RunnerConfig{
		Instance: vrrp.Config{
			VRID: in.VirtualRouterID, Version: uint8(in.Version), Priority: in.Priority,
			AdverInt: in.AdvertInterval, NoPreempt: in.Nopreempt, PreemptDelay: in.PreemptDelay,
			GARPMasterDelay: in.GarpMasterDelay, GARPMasterRepeat: in.GarpMasterRepeat,
			GARPMasterRefresh: in.GarpMasterRefresh, GARPMasterRefreshRepeat: in.GarpMasterRefreshRepeat,
		},
		VIPs:     vips,
		AuthType: auth, AuthPass: in.AuthPass,
		CheckUnicastSrc: in.CheckUnicastSrc, SkipCheckAdvAddr: in.SkipCheckAdvAddr,
		Peers:    peers,
		Conn:     conn,
		Logf:     func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...), "instance", in.Name) },
		DropLogf: func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...), "instance", in.Name) },
	}
}
