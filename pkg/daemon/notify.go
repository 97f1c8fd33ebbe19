package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// notifier speaks systemd's notify protocol (sd_notify(3)): datagrams of
// KEY=VALUE lines to the socket $NOTIFY_SOCKET names, for a Type=notify
// unit. Without the variable it does nothing: the daemon is not run by
// systemd.
type notifier struct {
	conn *net.UnixConn
	log  *slog.Logger
}

func newNotifier(log *slog.Logger) *notifier {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return &notifier{log: log}
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:] // an abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		log.Warn("systemd notify socket unreachable: systemd will not hear from xlb", "socket", os.Getenv("NOTIFY_SOCKET"), "error", err)
		return &notifier{log: log}
	}
	return &notifier{conn: c, log: log}
}

// send sends lines as one notification.
func (n *notifier) send(lines ...string) {
	if n.conn == nil {
		return
	}
	if _, err := n.conn.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		n.log.Warn("systemd notify", "error", err)
	}
}

// reloading is RELOADING=1 with the monotonic time systemd's notify-reload
// units want beside it.
func (n *notifier) reloading() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	n.send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(ts.Nano()/1000, 10), "STATUS=reloading the configuration")
}

func (n *notifier) close() {
	if n.conn != nil {
		n.conn.Close()
	}
}

// watchdog pings systemd's watchdog (WatchdogSec=) at half its interval,
// each time only after alive has answered within the interval: a daemon
// whose director (its lock, held while applying), data plane or a VRRP
// instance's loop is stuck stops pinging, and systemd restarts it.
// Without WATCHDOG_USEC (or for another process's WATCHDOG_PID) it does
// nothing.
func (n *notifier) watchdog(ctx context.Context, alive func(context.Context) error) {
	if n.conn == nil {
		return
	}
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return
	}
	every := time.Duration(usec) * time.Microsecond / 2
	n.log.Info("systemd watchdog", "interval", time.Duration(usec)*time.Microsecond)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			done := make(chan error, 1)
			// Each loop asked has the interval to answer; the state
			// (a lock held) has twice that.
			actx, cancel := context.WithTimeout(ctx, every)
			go func() { done <- alive(actx) }()
			select {
			case err := <-done:
				cancel()
				if err != nil {
					n.log.Error("watchdog: the daemon does not answer; not pinging systemd", "error", err)
					continue
				}
				n.send("WATCHDOG=1")
			case <-time.After(2 * every):
				cancel()
				n.log.Error("watchdog: the daemon's state did not answer in time; not pinging systemd", "waited", 2*every)
			case <-ctx.Done():
				cancel()
				return
			}
		}
	}()
}

// statusLine is the STATUS= text: what the daemon is doing.
func statusLine(st statusSummary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d virtual services on %s", st.services, st.dataplane)
	for _, v := range st.vrrp {
		fmt.Fprintf(&b, ", VRRP %s", v)
	}
	if st.bgp != "" {
		fmt.Fprintf(&b, ", BGP %s", st.bgp)
	}
	return b.String()
}

// statusSummary is what statusLine says.
type statusSummary struct {
	services  int
	dataplane string   // "xdp (eth0 native)", "ipvs"
	vrrp      []string // "MASTER on VI_1"
	bgp       string   // "1/1 sessions, 2 VIPs announced"
}

// summary reads the daemon's status into a statusSummary.
func (d *daemon) summary() statusSummary {
	st, err := d.Status()
	if err != nil {
		return statusSummary{dataplane: "(status unreadable: " + err.Error() + ")"}
	}
	s := statusSummary{services: len(st.Services), dataplane: st.Dataplane}
	var ifs []string
	for name, mode := range st.Interfaces {
		ifs = append(ifs, name+" "+mode)
	}
	if len(ifs) > 0 {
		s.dataplane += " (" + strings.Join(ifs, ", ") + ")"
	}
	for _, v := range st.VRRP {
		s.vrrp = append(s.vrrp, v.State+" on "+v.Name)
	}
	if b := st.BGP; b != nil {
		up, ann := 0, 0
		for _, p := range b.Peers {
			if p.State == "established" {
				up++
			}
		}
		for _, v := range b.VIPs {
			if v.Announced {
				ann++
			}
		}
		s.bgp = fmt.Sprintf("%d/%d sessions, %d VIPs announced", up, len(b.Peers), ann)
	}
	return s
}
