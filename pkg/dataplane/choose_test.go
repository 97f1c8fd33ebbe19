package dataplane

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The one --dataplane auto policy, on the evidence xlb run and xlb probe
// gather: every step down says why.
func TestChoose(t *testing.T) {
	refused := errors.New("refused")
	old := errors.New("kernel 5.10 is older than the XDP data plane needs")
	tun := errors.New("keepalived.conf:5: real_server 10.0.0.2 80: lvs_method TUN is not supported by the XDP data plane (DR, NAT are)")
	for _, c := range []struct {
		name string
		e    Evidence
		want string
		why  string
	}{
		{"all there", Evidence{}, "xdp-native", ""},
		{"pinned: taken over, nothing probed", Evidence{Pinned: true, Native: refused, Generic: refused}, "xdp-pinned", ""},
		{"native refused", Evidence{Native: refused}, "xdp-generic", "xdp-native: refused"},
		{"generic asked for", Evidence{Want: XDPGeneric}, "xdp-generic", ""},
		{"generic asked for, native not probed", Evidence{Want: XDPGeneric, Native: refused}, "xdp-generic", ""},
		{"native asked for and refused: no generic", Evidence{Want: XDPNative, Native: refused}, "ipvs", "xdp-native: refused"},
		{"both refused", Evidence{Native: refused, Generic: refused}, "ipvs", "xdp-native: refused; xdp-generic: refused"},
		{"kernel too old for the program", Evidence{Program: old}, "ipvs", old.Error()},
		{"the configuration needs IPVS", Evidence{Config: tun}, "ipvs", "the configuration needs IPVS: " + tun.Error()},
		{"nothing", Evidence{Native: refused, Generic: refused, IPVS: refused}, "none", "xdp-native: refused; xdp-generic: refused; ipvs: refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Choose(c.e)
			assert.Equal(t, c.want, d.String())
			assert.Equal(t, c.why, strings.Join(d.Why, "; "))
		})
	}
}
