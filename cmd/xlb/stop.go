package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
)

// runStop is the unit's ExecStop: it stops the daemon PID the way the job
// systemd is running asks for. A restart job (systemctl restart, a
// package's restart) is a hitless handoff (SIGUSR2: the data plane, the
// VIPs and the VRRP state stay for the new process, which Restart=always
// starts); anything else (systemctl stop, shutdown) is SIGTERM, and the
// director withdraws its VIPs for the peer. It returns once PID is gone:
// systemd would send SIGTERM to a process still running after ExecStop,
// in the middle of its handoff.
func runStop(e env, args []string) int {
	fs := pflag.NewFlagSet("xlb stop", pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	unit := fs.String("unit", "", "the systemd unit whose job decides how to stop (%n in the unit file); none: SIGTERM")
	systemctl := fs.String("systemctl", "systemctl", "the systemctl to ask for the unit's job")
	timeout := fs.Duration("timeout", 25*time.Second, "how long to wait for the daemon to exit")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: xlb stop [--unit NAME] PID\n\nStops the daemon PID as the unit's systemd job asks: a restart job is a hitless\nhandoff (SIGUSR2: the data plane, VIPs and VRRP state stay for the next process),\nanything else SIGTERM. Returns when PID has exited (the unit's ExecStop).\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(e.stderr, "xlb stop: %v\n", err)
		return 2
	}
	if fs.NArg() == 0 {
		// systemd runs ExecStop after the daemon exited on its own too,
		// with $MAINPID empty: nothing to stop.
		fmt.Fprintln(e.stdout, "xlb stop: no PID: the daemon is not running")
		return 0
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	pid, err := strconv.Atoi(fs.Arg(0))
	if err != nil || pid <= 1 {
		fmt.Fprintf(e.stderr, "xlb stop: want the daemon's PID ($MAINPID), got %q\n", fs.Arg(0))
		return 2
	}
	sig, why := syscall.SIGTERM, "not a restart"
	if *unit != "" {
		job, err := unitJob(*systemctl, *unit)
		switch {
		case err != nil:
			why = fmt.Sprintf("its job unknown (%v)", err)
		case job == "restart":
			sig, why = syscall.SIGUSR2, "a restart job: hitless handoff"
		case job != "":
			why = "a " + job + " job"
		}
	}
	fmt.Fprintf(e.stdout, "xlb stop: %s to %d (%s)\n", sigName(sig), pid, why)
	if err := syscall.Kill(pid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return 0
		}
		fmt.Fprintf(e.stderr, "xlb stop: %v\n", err)
		return 1
	}
	deadline := time.Now().Add(*timeout)
	for running(pid) {
		if time.Now().After(deadline) {
			fmt.Fprintf(e.stderr, "xlb stop: %d still running after %v\n", pid, *timeout)
			return 1
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0
}

// unitJob is the type of the job systemd runs for unit now ("restart",
// "stop", ...), "" for none: systemctl list-jobs prints "ID UNIT TYPE
// STATE".
func unitJob(systemctl, unit string) (string, error) {
	out, err := exec.Command(systemctl, "list-jobs", "--no-legend", "--plain", "--no-pager").Output()
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[1] == unit {
			return f[2], nil
		}
	}
	return "", sc.Err()
}

// running says whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func sigName(s syscall.Signal) string {
	if s == syscall.SIGUSR2 {
		return "SIGUSR2"
	}
	return "SIGTERM"
}
