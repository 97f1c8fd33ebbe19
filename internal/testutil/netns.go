package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is a named network namespace (/run/netns/NAME).
type NS struct {
	Name   string
	handle netns.NsHandle
}

// Run runs a command and returns its combined output as the error text on
// failure.
func Run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Suffix returns a short random string for unique names.
func Suffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewNS makes a named namespace with lo up.
func NewNS(name string) (*NS, error) {
	if err := Run("ip", "netns", "add", name); err != nil {
		return nil, err
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		_ = Run("ip", "netns", "del", name)
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	ns := &NS{Name: name, handle: h}
	if err := ns.IP("link", "set", "lo", "up"); err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// Close deletes the namespace.
func (n *NS) Close() error {
	n.handle.Close()
	return Run("ip", "netns", "del", n.Name)
}

// Handle is the namespace's file descriptor.
func (n *NS) Handle() netns.NsHandle { return n.handle }

// Netlink returns a netlink handle bound to the namespace.
func (n *NS) Netlink() (*netlink.Handle, error) {
	// Route only: a handle for every family fails where the xfrm module
	// is not loaded (Debian's cloud kernels in the test VMs).
	return netlink.NewHandleAt(n.handle, unix.NETLINK_ROUTE)
}

// IP runs `ip -n NAME args...`.
func (n *NS) IP(args ...string) error {
	return Run(append([]string{"ip", "-n", n.Name}, args...)...)
}

// Exec runs a command inside the namespace (network namespace only, so
// /sys/fs/bpf stays visible).
func (n *NS) Exec(args ...string) error {
	return Run(append([]string{"nsenter", "--net=/run/netns/" + n.Name}, args...)...)
}

// Sysctl sets a sysctl inside the namespace.
func (n *NS) Sysctl(key, value string) error {
	return n.Exec("sysctl", "-q", "-w", key+"="+value)
}

// Do runs fn on a locked OS thread inside the namespace. Sockets made in fn
// stay in the namespace after it returns.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread goes back to its namespace afterwards. Were it
		// left locked in n instead, it would be discarded when this
		// goroutine ends — unless it is the main thread, which Go
		// parks rather than ends, keeping n (and its links) alive
		// after ip netns del.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("read this thread's netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(n.handle); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", n.Name, err)
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Listen opens a listener inside the namespace.
func (n *NS) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// ListenPacket opens a packet socket inside the namespace.
func (n *NS) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.Do(func() (err error) {
		c, err = net.ListenPacket(network, addr)
		return err
	})
	return c, err
}

// DialContext dials from inside the namespace; it fits http.Transport.
func (n *NS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}
