package xdp

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/xlbproject/xlb/pkg/dataplane"
)

// helperEnv makes the test binary act as a director process: it takes over
// the data plane pinned at the given directory, applies the services, and
// exits leaving it running, as a restarted xlb does.
const helperEnv = "XLB_TEST_DIRECTOR"

type helperJob struct {
	Netns     string
	PinDir    string
	Interface string
	Services  []dataplane.Service
}

func TestMain(m *testing.M) {
	if v := os.Getenv(helperEnv); v != "" {
		if err := runHelper(v); err != nil {
			fmt.Fprintln(os.Stderr, "director helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runHelper(v string) error {
	var job helperJob
	if err := json.Unmarshal([]byte(v), &job); err != nil {
		return err
	}
	runtime.LockOSThread()
	h, err := netns.GetFromName(job.Netns)
	if err != nil {
		return err
	}
	if err := netns.Set(h); err != nil {
		return err
	}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return err
	}
	x, err := Open(Config{
		Interfaces: []string{job.Interface},
		PinDir:     job.PinDir,
		MaxConns:   4096,
		Resolver:   NeighResolver{Handle: nl},
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		return err
	}
	if err := x.Apply(inListOrder(job.Services)); err != nil {
		return err
	}
	return x.Release()
}
