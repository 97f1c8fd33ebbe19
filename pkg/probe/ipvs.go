package probe

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// IPVS reports whether the kernel's IPVS is reachable over generic netlink.
// When the family is not registered it runs `modprobe ip_vs` (if modprobe
// is installed) and looks again.
func IPVS() error {
	if err := checkDeny(FeatureIPVS); err != nil {
		return err
	}
	return ipvs(context.Background())
}

func ipvs(ctx context.Context) error {
	if _, err := netlink.GenlFamilyGet("IPVS"); err == nil {
		return nil
	}
	why := modprobe(ctx, "ip_vs")
	_, err := netlink.GenlFamilyGet("IPVS")
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, unix.ENOENT):
		return fmt.Errorf("resolve genetlink family IPVS: %w", err)
	case why == "":
		return errors.New("genetlink family IPVS not found although modprobe ip_vs succeeded")
	default:
		return fmt.Errorf("genetlink family IPVS not found (module ip_vs not loaded and %s)", why)
	}
}

// modprobe loads a module and returns "" or why it did not.
func modprobe(ctx context.Context, module string) string {
	path, err := exec.LookPath("modprobe")
	if err != nil {
		for _, p := range []string{"/usr/sbin/modprobe", "/sbin/modprobe"} {
			if _, serr := exec.LookPath(p); serr == nil {
				path, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return "modprobe is not installed"
	}
	out, err := exec.CommandContext(ctx, path, module).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Sprintf("modprobe %s failed: %s", module, msg)
	}
	return ""
}
