package syncd

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/ipvssync"
)

// Daemons are a data plane's sync daemons, at most one master and one
// backup, as the kernel allows in a namespace. It implements
// dataplane.SyncDaemons.
type Daemons struct {
	table Table
	log   *slog.Logger

	mu     sync.Mutex
	master *master
	backup *backup
	stats  Stats // of daemons stopped, and the running ones' are added
	smu    sync.Mutex
}

var _ dataplane.SyncDaemons = (*Daemons)(nil)

// New makes the daemons of table; none runs yet.
func New(table Table, log *slog.Logger) *Daemons {
	if log == nil {
		log = slog.Default()
	}
	return &Daemons{table: table, log: log}
}

// withDefaults fills what the kernel fills: the group, port and TTL, and
// the maximum message length (the master's 1472 whatever the MTU, the
// backup's from the interface's MTU), as ipvsadm -L --daemon then lists.
func withDefaults(c dataplane.SyncDaemon, mtu int) dataplane.SyncDaemon {
	if !c.Group.IsValid() {
		c.Group = ipvssync.Group
	}
	if c.Port == 0 {
		c.Port = ipvssync.Port
	}
	if c.TTL == 0 {
		c.TTL = 1
	}
	if c.MaxLen == 0 {
		if c.Backup {
			c.MaxLen = uint16(min(max(mtu, 1500), 65535) - 28)
		} else {
			c.MaxLen = ipvssync.DefaultMaxLen
		}
	}
	return c
}

// StartDaemon implements dataplane.SyncDaemons.
func (d *Daemons) StartDaemon(c dataplane.SyncDaemon) error {
	what := "master"
	if c.Backup {
		what = "backup"
	}
	if c.Group.IsValid() && !c.Group.Is4() {
		return fmt.Errorf("start the sync %s: IPv6 group %s: xlb's sync daemons speak IPv4 only", what, c.Group)
	}
	if c.Group.IsValid() && !c.Group.IsMulticast() {
		return fmt.Errorf("start the sync %s: %s is no multicast group", what, c.Group)
	}
	ifi, err := net.InterfaceByName(c.Interface)
	if err != nil {
		return fmt.Errorf("start the sync %s: interface %q: %w", what, c.Interface, err)
	}
	c = withDefaults(c, ifi.MTU)
	d.mu.Lock()
	defer d.mu.Unlock()
	if (c.Backup && d.backup != nil) || (!c.Backup && d.master != nil) {
		return fmt.Errorf("start the sync %s: one is already running: %w", what, syscall.EEXIST)
	}
	if c.Backup {
		b, err := startBackup(c, ifi, d.table, d.log)
		if err != nil {
			return fmt.Errorf("start the sync backup: %w", err)
		}
		d.backup = b
	} else {
		m, err := startMaster(c, ifi, d.table, d.log)
		if err != nil {
			return fmt.Errorf("start the sync master: %w", err)
		}
		d.master = m
	}
	d.log.Info("sync daemon started", "role", what, "interface", c.Interface, "syncid", c.SyncID,
		"group", netip.AddrPortFrom(c.Group, c.Port).String(), "maxlen", c.MaxLen, "ttl", c.TTL)
	return nil
}

// StopDaemon implements dataplane.SyncDaemons.
func (d *Daemons) StopDaemon(backup bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var s Stats
	switch {
	case backup && d.backup != nil:
		s = d.backup.stop()
		d.backup = nil
	case !backup && d.master != nil:
		s = d.master.stop()
		d.master = nil
	default:
		what := "master"
		if backup {
			what = "backup"
		}
		return fmt.Errorf("stop the sync %s: none is running: %w", what, syscall.ESRCH)
	}
	d.smu.Lock()
	d.stats = add(d.stats, s)
	d.smu.Unlock()
	d.log.Info("sync daemon stopped", "backup", backup, "stats", s.String())
	return nil
}

// Daemons implements dataplane.SyncDaemons: the master first.
func (d *Daemons) Daemons() ([]dataplane.SyncDaemon, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []dataplane.SyncDaemon
	if d.master != nil {
		out = append(out, d.master.cfg)
	}
	if d.backup != nil {
		out = append(out, d.backup.cfg)
	}
	return out, nil
}

// Stats are the daemons' counts, the stopped ones' included.
func (d *Daemons) Stats() Stats {
	d.mu.Lock()
	m, b := d.master, d.backup
	d.mu.Unlock()
	d.smu.Lock()
	s := d.stats
	d.smu.Unlock()
	if m != nil {
		s = add(s, m.snapshot())
	}
	if b != nil {
		s = add(s, b.snapshot())
	}
	return s
}

// Close stops both daemons.
func (d *Daemons) Close() {
	_ = d.StopDaemon(true)
	_ = d.StopDaemon(false)
}

func add(a, b Stats) Stats {
	a.SentMessages += b.SentMessages
	a.SentRecords += b.SentRecords
	a.SendErrors += b.SendErrors
	a.Dumps += b.Dumps
	a.LastPass = max(a.LastPass, b.LastPass)
	a.ReceivedMessages += b.ReceivedMessages
	a.ReceivedRecords += b.ReceivedRecords
	a.Installed += b.Installed
	a.Stale += b.Stale
	a.Skipped += b.Skipped
	a.Dropped += b.Dropped
	a.OtherSyncID += b.OtherSyncID
	a.Malformed += b.Malformed
	a.InstallErrors += b.InstallErrors
	if b.LastReceived.After(a.LastReceived) {
		a.LastReceived = b.LastReceived
	}
	if !b.DumpRequested.IsZero() {
		a.DumpRequested, a.DumpReceived = b.DumpRequested, b.DumpReceived
	}
	return a
}

// ifaceAddr is the interface's first IPv4 address: the master's source,
// as the kernel binds its socket to it (bind_mcastif_addr).
func ifaceAddr(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address", ifi.Name)
}

// sendSocket is the master's socket (make_send_sock): multicast out of the
// interface, from its address, not looped back, with the TTL, DF off.
func sendSocket(c dataplane.SyncDaemon, ifi *net.Interface) (int, error) {
	src, err := ifaceAddr(ifi)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, err
	}
	return setup(fd, []sockopt{
		{"IP_MULTICAST_IF", func() error {
			return unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)})
		}},
		{"IP_MULTICAST_LOOP", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0) }},
		{"IP_MULTICAST_TTL", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, int(c.TTL)) }},
		{"IP_MTU_DISCOVER", func() error {
			return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT)
		}},
		{"bind", func() error { return unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}) }},
		{"connect", func() error { return unix.Connect(fd, &unix.SockaddrInet4{Addr: c.Group.As4(), Port: int(c.Port)}) }},
	})
}

// sockopt is one step of a socket's setup.
type sockopt struct {
	name string
	fn   func() error
}

// setup runs the steps in turn and returns fd; at the first failure it
// closes fd and names the step.
func setup(fd int, steps []sockopt) (int, error) {
	for _, s := range steps {
		if err := s.fn(); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("sync socket %s: %w", s.name, err)
		}
	}
	return fd, nil
}

// RecvBuffer is the backup's socket buffer.
var RecvBuffer = 96 << 20

// receiveSocket is the backup's socket (make_receive_sock): bound to the
// group and port on the interface, a member of the group there.
func receiveSocket(c dataplane.SyncDaemon, ifi *net.Interface) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, err
	}
	return setup(fd, []sockopt{
		{"SO_REUSEADDR", func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) }},
		{"SO_BINDTODEVICE", func() error { return unix.BindToDevice(fd, ifi.Name) }},
		// A bulk dump comes at once, faster than it is installed: room
		// for a million records (the kernel's rmem_max is lifted; as
		// root, SO_RCVBUFFORCE may). Memory only while a backlog waits.
		{"SO_RCVBUF", func() error {
			if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, RecvBuffer) == nil {
				return nil
			}
			return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, RecvBuffer)
		}},
		{"bind", func() error { return unix.Bind(fd, &unix.SockaddrInet4{Addr: c.Group.As4(), Port: int(c.Port)}) }},
		{"IP_ADD_MEMBERSHIP", func() error {
			return unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
				&unix.IPMreqn{Multiaddr: c.Group.As4(), Ifindex: int32(ifi.Index)})
		}},
		// A receive timeout lets the loop see that it must stop.
		{"SO_RCVTIMEO", func() error {
			tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
			return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		}},
	})
}

// receive reads one datagram, false when the timeout passed.
func receive(fd int, buf []byte) (int, netip.Addr, bool, error) {
	n, from, err := unix.Recvfrom(fd, buf, 0)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return 0, netip.Addr{}, false, nil
	}
	if err != nil {
		return 0, netip.Addr{}, false, err
	}
	var src netip.Addr
	if sa, ok := from.(*unix.SockaddrInet4); ok {
		src = netip.AddrFrom4(sa.Addr)
	}
	return n, src, true, nil
}

// daemon is what a master and a backup share: a socket to send to the
// group, one that receives from it, counts, and a stop.
type daemon struct {
	cfg   dataplane.SyncDaemon
	table Table
	log   *slog.Logger
	send  int // connected to the group
	recv  int // bound to the group

	mu    sync.Mutex
	stats Stats

	quit chan struct{}
	done sync.WaitGroup
}

func newDaemon(c dataplane.SyncDaemon, ifi *net.Interface, t Table, log *slog.Logger) (*daemon, error) {
	send, err := sendSocket(c, ifi)
	if err != nil {
		return nil, err
	}
	recv, err := receiveSocket(c, ifi)
	if err != nil {
		unix.Close(send)
		return nil, err
	}
	return &daemon{cfg: c, table: t, log: log, send: send, recv: recv, quit: make(chan struct{})}, nil
}

// run starts fns, each running until the daemon stops.
func (d *daemon) run(fns ...func()) {
	d.done.Add(len(fns))
	for _, fn := range fns {
		go func() { defer d.done.Done(); fn() }()
	}
}

func (d *daemon) stop() Stats {
	close(d.quit)
	d.done.Wait()
	unix.Close(d.send)
	unix.Close(d.recv)
	return d.snapshot()
}

func (d *daemon) snapshot() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// master multicasts the table's flows (send) and hears dump requests
// (recv).
type master struct {
	*daemon
	sent map[recKey]*sentAs
	pass uint64
	buf  []ipvssync.Conn // the last pass's records, reused
	dump chan struct{}
	// unsendableAt is when a record no message can carry was last
	// logged: at most once a minute, not on every pass.
	unsendableAt time.Time
}

func startMaster(c dataplane.SyncDaemon, ifi *net.Interface, t Table, log *slog.Logger) (*master, error) {
	d, err := newDaemon(c, ifi, t, log)
	if err != nil {
		return nil, err
	}
	m := &master{daemon: d, sent: map[recKey]*sentAs{}, dump: make(chan struct{}, 1)}
	d.run(m.passes, m.listen)
	return m, nil
}

// listen answers bulk dump requests for its syncid (any, when its syncid
// is 0).
func (m *master) listen() {
	buf := make([]byte, 65536)
	for {
		select {
		case <-m.quit:
			return
		default:
		}
		n, from, ok, err := receive(m.recv, buf)
		if err != nil {
			m.log.Warn("sync master: reading requests", "error", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !ok || !bytes.Equal(extensionTag(buf[:n]), tagDumpRequest) {
			continue
		}
		if id := buf[1]; id != m.cfg.SyncID && m.cfg.SyncID != 0 && id != 0 {
			continue
		}
		m.log.Info("sync master: bulk dump requested", "from", from.String())
		select {
		case m.dump <- struct{}{}:
		default:
		}
	}
}

// passes reads the table every PollInterval (or longer), and at once
// for a dump.
func (m *master) passes() {
	wait := time.Duration(0)
	for {
		dump := false
		select {
		case <-m.quit:
			return
		case <-m.dump:
			dump = true
		case <-time.After(wait):
		}
		start := time.Now()
		if err := m.passOnce(dump); err != nil {
			m.log.Warn("sync master: reading the flow table", "error", err)
		}
		took := time.Since(start)
		m.mu.Lock()
		m.stats.LastPass = took
		m.mu.Unlock()
		// A table that takes long to read is read less often: the
		// master never spends more than a fifth of a core on it.
		wait = max(PollInterval, 4*took)
	}
}

// passOnce reads the table and sends what changed (everything for a
// dump, then the end-of-dump marker).
func (m *master) passOnce(dump bool) error {
	m.pass++
	now := time.Now()
	out := m.buf[:0]
	defer func() { m.buf = out[:0] }()
	var unsendable uint64
	err := m.table.SyncRecords(func(r Record) {
		if err := r.Conn.Check(); err != nil {
			// One record the wire cannot carry must not cost
			// every other its sync.
			if unsendable++; unsendable == 1 && now.Sub(m.unsendableAt) >= time.Minute {
				m.unsendableAt = now
				m.log.Warn("sync master: a record no message can carry is left out (logged at most once a minute; xlb status counts them)",
					"record", r.Conn.String(), "error", err)
			}
			return
		}
		k := keyOf(&r.Conn)
		s := m.sent[k]
		dest := destOf(&r.Conn)
		switch {
		case dump, s == nil, s.state != r.State, s.dest != dest, s.flags != r.Flags:
		case r.Seen != s.seen && now.Sub(s.at) >= refreshAfter(&r.Conn):
		default:
			s.pass = m.pass
			return
		}
		if s == nil {
			s = &sentAs{}
			m.sent[k] = s
		}
		*s = sentAs{state: r.State, dest: dest, flags: r.Flags, seen: r.Seen, at: now, pass: m.pass}
		out = append(out, r.Conn)
	})
	if err != nil {
		return err
	}
	for k, s := range m.sent {
		if s.pass != m.pass {
			delete(m.sent, k)
		}
	}
	msgs, err := ipvssync.Batch(m.cfg.SyncID, out, int(m.cfg.MaxLen))
	if err != nil {
		return err
	}
	var sent, records, failed uint64
	for _, msg := range msgs {
		b, err := msg.MarshalBinary()
		if err == nil {
			_, err = unix.Write(m.send, b)
		}
		if err != nil {
			failed++
			if failed == 1 {
				m.log.Warn("sync master: send", "error", err)
			}
			continue
		}
		sent++
		records += uint64(len(msg.Conns))
	}
	if dump {
		if _, err := unix.Write(m.send, extension(m.cfg.SyncID, tagDumpDone)); err != nil {
			failed++
		}
		m.log.Info("sync master: bulk dump sent", "records", len(out), "messages", len(msgs))
	}
	m.mu.Lock()
	m.stats.SentMessages += sent
	m.stats.SentRecords += records
	m.stats.SendErrors += failed
	m.stats.Unsendable += unsendable
	if dump {
		m.stats.Dumps++
	}
	m.mu.Unlock()
	return nil
}

// backup installs its master's records (recv) and asks for a bulk dump
// (send).
type backup struct {
	*daemon
}

func startBackup(c dataplane.SyncDaemon, ifi *net.Interface, t Table, log *slog.Logger) (*backup, error) {
	d, err := newDaemon(c, ifi, t, log)
	if err != nil {
		return nil, err
	}
	b := &backup{daemon: d}
	d.run(b.receive)
	return b, nil
}

func (b *backup) requestDump() {
	if _, err := unix.Write(b.send, extension(b.cfg.SyncID, tagDumpRequest)); err != nil {
		b.log.Warn("sync backup: asking for a bulk dump", "error", err)
	}
}

// receive installs what arrives, asking for a dump until one ended.
func (b *backup) receive() {
	buf := make([]byte, 65536)
	b.mu.Lock()
	b.stats.DumpRequested = time.Now()
	b.mu.Unlock()
	b.requestDump()
	asked, tries := time.Now(), 1
	for {
		select {
		case <-b.quit:
			return
		default:
		}
		b.mu.Lock()
		dumped := !b.stats.DumpReceived.IsZero()
		b.mu.Unlock()
		if !dumped && tries < DumpTries && time.Since(asked) >= DumpRetry {
			b.requestDump()
			asked, tries = time.Now(), tries+1
		}
		n, from, ok, err := receive(b.recv, buf)
		if err != nil {
			b.log.Warn("sync backup: receive", "error", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !ok {
			continue
		}
		b.handle(buf[:n], from)
	}
}

func (b *backup) handle(d []byte, from netip.Addr) {
	now := time.Now()
	if tag := extensionTag(d); tag != nil {
		if bytes.Equal(tag, tagDumpDone) && (b.cfg.SyncID == 0 || d[1] == b.cfg.SyncID) {
			b.mu.Lock()
			if b.stats.DumpReceived.IsZero() {
				b.log.Info("sync backup: bulk dump received", "from", from.String(),
					"after", now.Sub(b.stats.DumpRequested).Round(time.Millisecond).String())
			}
			b.stats.DumpReceived = now
			b.mu.Unlock()
		}
		return // a request is for masters
	}
	var msg ipvssync.Message
	if err := msg.UnmarshalBinary(d); err != nil {
		b.mu.Lock()
		b.stats.Malformed++
		b.mu.Unlock()
		return
	}
	// The kernel's filter: a backup with a syncid takes only its own.
	if b.cfg.SyncID != 0 && msg.SyncID != b.cfg.SyncID {
		b.mu.Lock()
		b.stats.OtherSyncID++
		b.mu.Unlock()
		return
	}
	dropped := 0
	for _, dr := range msg.Dropped {
		dropped += dr.Count
	}
	res, err := b.table.SyncInstall(msg.Conns)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats.ReceivedMessages++
	b.stats.ReceivedRecords += uint64(len(msg.Conns) + dropped)
	b.stats.Dropped += uint64(dropped)
	b.stats.Installed += uint64(res.Installed)
	b.stats.Stale += uint64(res.Stale)
	b.stats.Skipped += uint64(res.Skipped)
	b.stats.LastReceived = now
	if err != nil {
		b.stats.InstallErrors++
		b.log.Warn("sync backup: install", "from", from.String(), "error", err)
	}
}
