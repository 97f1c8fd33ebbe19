package ipvs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"

	kipvs "github.com/cloudflare/ipvs"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/pkg/dataplane"
)

// requireIPVS skips when this kernel has no IPVS (the host xlb is developed
// on); in the test VM ($VMTEST) a missing IPVS is a failure.
func requireIPVS(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for IPVS and network namespaces")
	}
	c, err := kipvs.New()
	if err == nil {
		_, err = c.Info()
		if cl, ok := c.(io.Closer); ok {
			cl.Close()
		}
	}
	if err == nil {
		return
	}
	if os.Getenv("VMTEST") != "" {
		t.Fatalf("the test VM's kernel should have IPVS: %v", err)
	}
	t.Skipf("kernel has no IPVS (run: make vmtest KERNEL=6.1): %v", err)
}

// env is an IPVS to test against: the kernel's, in a network namespace of
// the test's own, or the fake.
type env struct {
	raw kipvs.Client // for looking behind the data plane's back
	ns  *testNS      // nil for the fake
	// fake is set for the fake backend (to make writes fail).
	fake *fakeIPVS
}

// backends runs fn against the fake IPVS and, where the kernel has IPVS,
// against the kernel's.
func backends(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("fake", func(t *testing.T) {
		f := newFakeIPVS()
		fn(t, &env{raw: f, fake: f})
	})
	t.Run("kernel", func(t *testing.T) {
		fn(t, kernelEnv(t))
	})
}

// kernelEnv is the kernel's IPVS in a fresh network namespace, which has
// an IPVS table of its own and takes it along when the test ends.
func kernelEnv(t *testing.T) *env {
	t.Helper()
	requireIPVS(t)
	return envIn(t, newTestNS(t))
}

// envIn is the kernel's IPVS in ns.
func envIn(t *testing.T, ns *testNS) *env {
	t.Helper()
	var c kipvs.Client
	require.NoError(t, ns.do(func() (err error) {
		c, err = kipvs.New()
		return err
	}))
	t.Cleanup(func() {
		if cl, ok := c.(io.Closer); ok {
			cl.Close()
		}
	})
	return &env{raw: c, ns: ns}
}

// open opens the data plane on e through a write counter; it is closed
// when the test ends.
func (e *env) open(t *testing.T, opts Options) (*Dataplane, *countingClient) {
	t.Helper()
	cc := &countingClient{Client: e.raw}
	opts.Client = cc
	if e.ns != nil {
		opts.NetNS = e.ns.path
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	v, err := Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	return v, cc
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// kernelView is what IPVS holds, in comparable form.
type kernelView map[string][]string

// view reads every service of e's IPVS, whoever made it: one line for the
// service's settings, one per dest, dests sorted.
func (e *env) view(t *testing.T) kernelView {
	t.Helper()
	list, err := e.raw.Services()
	if !errors.Is(err, os.ErrNotExist) {
		require.NoError(t, err)
	}
	out := kernelView{}
	for _, s := range list {
		name := fmt.Sprintf("%s %s", s.Protocol, netip.AddrPortFrom(s.Address, s.Port))
		lines := []string{fmt.Sprintf("%s flags=%#x timeout=%d mask=/%d", s.Scheduler, uint32(s.Flags&^kipvs.ServiceHashed), s.Timeout, s.Netmask.Bits())}
		dests, err := e.raw.Destinations(s.Service)
		if !errors.Is(err, os.ErrNotExist) {
			require.NoError(t, err)
		}
		var ds []string
		for _, d := range dests {
			ds = append(ds, fmt.Sprintf("%s w=%d %s", netip.AddrPortFrom(d.Address, d.Port), d.Weight, d.FwdMethod))
		}
		slices.Sort(ds)
		out[name] = append(lines, ds...)
	}
	return out
}

// expectedView is what IPVS should hold for services (input order of
// reals does not matter).
func expectedView(services []dataplane.Service) kernelView {
	out := kernelView{}
	for _, s := range services {
		k := kernelService(s)
		name := fmt.Sprintf("%s %s", k.Protocol, netip.AddrPortFrom(k.Address, k.Port))
		timeout := k.Timeout
		lines := []string{fmt.Sprintf("%s flags=%#x timeout=%d mask=/%d", k.Scheduler, uint32(k.Flags), timeout, k.Netmask.Bits())}
		var ds []string
		for _, r := range s.Reals {
			ds = append(ds, fmt.Sprintf("%s w=%d %s", netip.AddrPortFrom(r.Addr, r.Port), r.Weight, forwardMethod(r.Forward)))
		}
		slices.Sort(ds)
		out[name] = append(lines, ds...)
	}
	return out
}

// testNS is a network namespace of a test's own, gone when the test ends.
type testNS struct {
	h    netns.NsHandle
	path string // for Options.NetNS and inNS
	nl   *netlink.Handle
}

func newTestNS(t testing.TB) *testNS {
	t.Helper()
	var h netns.NsHandle
	errc := make(chan error, 1)
	go func() {
		// netns.New moves this thread into the new namespace; the
		// locked thread is thrown away when the goroutine ends.
		runtime.LockOSThread()
		var err error
		h, err = netns.New()
		errc <- err
	}()
	require.NoError(t, <-errc, "make a network namespace")
	ns := &testNS{h: h, path: fmt.Sprintf("/proc/self/fd/%d", int(h))}
	t.Cleanup(func() { h.Close() })
	nl, err := netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
	require.NoError(t, err)
	t.Cleanup(nl.Close)
	ns.nl = nl
	lo, err := nl.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, nl.LinkSetUp(lo))
	return ns
}

// do runs fn on a thread inside the namespace; sockets and processes fn
// makes live there.
func (n *testNS) do(fn func() error) error { return inNS(n.path, fn) }

// sysctl sets net.* sysctls, which are the namespace's own.
func (n *testNS) sysctl(t testing.TB, kv ...string) {
	t.Helper()
	require.NoError(t, n.do(func() error {
		for i := 0; i+1 < len(kv); i += 2 {
			p := "/proc/sys/" + strings.ReplaceAll(kv[i], ".", "/")
			if err := os.WriteFile(p, []byte(kv[i+1]), 0o644); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", kv[i], kv[i+1], err)
			}
		}
		return nil
	}))
}

// run runs a program inside the namespace (a child forked from a thread in
// a namespace starts in it) and returns its stdout.
func (n *testNS) run(t testing.TB, args ...string) string {
	t.Helper()
	var out []byte
	err := n.do(func() error {
		var err error
		cmd := exec.Command(args[0], args[1:]...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err = cmd.Output()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, stderr.String())
		}
		return nil
	})
	require.NoError(t, err)
	return string(out)
}

// schedulersHere are Caps.Schedulers less those whose module this kernel
// has not loaded, where it has IPVS at all (the VM loads every ip_vs_*
// module it has at boot; 6.1 has no ip_vs_twos, which came in 6.2).
func schedulersHere() []string {
	if _, err := os.Stat("/sys/module/ip_vs"); err != nil {
		return Caps.Schedulers // no IPVS here: the fake takes them all
	}
	var out []string
	for _, s := range Caps.Schedulers {
		if _, err := os.Stat("/sys/module/ip_vs_" + s); err == nil {
			out = append(out, s)
		}
	}
	return out
}
