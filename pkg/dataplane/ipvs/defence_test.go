package ipvs

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// The defence is IPVS's own: xlb writes its sysctls and the kernel moves
// them. Mode 1 with free memory below amemthresh reads 2 (engaged) within
// the kernel's one-second defence tick, and 1 again once the threshold is
// below free memory.
func TestDefenceIsTheKernels(t *testing.T) {
	e := kernelEnv(t)
	v, _ := e.open(t, Options{})
	st, err := v.Defence()
	require.NoError(t, err)
	assert.Equal(t, 0, st.DropEntry, "IPVS's default")
	assert.Equal(t, dataplane.DefaultAmDropRate, st.AmDropRate)

	// More pages than the machine has: always short of memory.
	require.NoError(t, v.SetDefence(dataplane.Defence{DropEntry: 1, DropPacket: 1, SecureTCP: 1, Threshold: 1 << 30}))
	waitFor := func(mode int) dataplane.DefenceStatus {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, err := v.Defence()
			require.NoError(t, err)
			if st.DropEntry == mode && st.DropPacket == mode && st.SecureTCP == mode {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("the kernel left the modes at %d/%d/%d, want %d", st.DropEntry, st.DropPacket, st.SecureTCP, mode)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	st = waitFor(2)
	assert.True(t, st.DropEntryOn)
	assert.True(t, st.SecureTCPOn)
	assert.Equal(t, 1, st.DropRate, "amemthresh/(amemthresh-free) with free far below")
	assert.Less(t, st.Room, st.RoomOf)

	require.NoError(t, v.SetDefence(dataplane.Defence{DropEntry: 1, DropPacket: 1, SecureTCP: 1, Threshold: 1}))
	st = waitFor(1)
	assert.False(t, st.DropEntryOn)
	assert.Zero(t, st.DropRate)
	assert.False(t, st.SecureTCPOn)

	require.Error(t, v.SetDefence(dataplane.Defence{DropEntry: 4}), "the kernel's modes are 0-3")
}

// Keep leaves the host's sysctls as they are; a zero threshold or rate
// is not written.
func TestDefenceKeepsTheHosts(t *testing.T) {
	v, read := withSysctls(t, map[string]string{"drop_entry": "1", "drop_packet": "3", "secure_tcp": "0", "amemthresh": "1024", "am_droprate": "10"})
	require.NoError(t, v.SetDefence(dataplane.Defence{Keep: true, AmDropRate: 20}))
	assert.Equal(t, []string{"1", "3", "0", "1024", "20"},
		[]string{read("drop_entry"), read("drop_packet"), read("secure_tcp"), read("amemthresh"), read("am_droprate")})
	require.NoError(t, v.SetDefence(dataplane.Defence{SecureTCP: 3}))
	assert.Equal(t, []string{"0", "0", "3", "1024", "20"},
		[]string{read("drop_entry"), read("drop_packet"), read("secure_tcp"), read("amemthresh"), read("am_droprate")})
	err := v.SetDefence(dataplane.Defence{DropPacket: 7, Threshold: -1})
	require.ErrorContains(t, err, "drop_packet 7")
	require.ErrorContains(t, err, "amemthresh -1")
	assert.Equal(t, "0", read("drop_packet"), "a refused setting writes nothing")
}

// sloppy_tcp is one switch per host in IPVS: on when every TCP service
// wants it, refused when only some do, back off when none does (a switch
// the host turned on and xlb never touched stays).
func TestSloppyIsTheHosts(t *testing.T) {
	v, read := withSysctls(t, map[string]string{"sloppy_tcp": "0", "sloppy_sctp": "1"})
	svc := func(port uint16, sloppy bool) dataplane.Service {
		return dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: netip.MustParseAddr("10.79.0.1"), Port: port, Protocol: lvs.TCP},
			Scheduler: "mh", Sloppy: sloppy,
			Reals: []dataplane.Real{{Addr: netip.MustParseAddr("10.79.1.1"), Port: port, Weight: 1, Forward: lvs.DR}}}
	}
	require.NoError(t, v.Apply([]dataplane.Service{svc(80, true), svc(443, true)}))
	assert.Equal(t, "1", read("sloppy_tcp"))
	assert.Equal(t, "1", read("sloppy_sctp"), "the host's, untouched")

	err := v.Apply([]dataplane.Service{svc(80, true), svc(443, false)})
	require.ErrorContains(t, err, "sloppy_tcp: IPVS has it for the whole host (net.ipv4.vs.sloppy_tcp), not per service: TCP 10.79.0.1:80 want it, TCP 10.79.0.1:443 do not")
	assert.Equal(t, "1", read("sloppy_tcp"), "a refused Apply changes nothing")

	require.NoError(t, v.Apply([]dataplane.Service{svc(80, false)}))
	assert.Equal(t, "0", read("sloppy_tcp"), "xlb turned it on: off again")
	assert.Equal(t, "1", read("sloppy_sctp"))
}

// withSysctls is a data plane over a fake IPVS whose sysctls are files
// holding vals, and what reads one of them back.
func withSysctls(t *testing.T, vals map[string]string) (*Dataplane, func(name string) string) {
	dir := t.TempDir()
	for name, val := range vals {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(val+"\n"), 0o644))
	}
	v, err := Open(Options{Client: newFakeIPVS(), Sysctls: dir})
	require.NoError(t, err)
	t.Cleanup(func() { v.Close() })
	return v, func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}
}
