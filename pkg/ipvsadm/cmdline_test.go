package ipvsadm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// cmdlineCase is one line of testdata/cmdline.jsonl: what the real ipvsadm
// 1.31 did with a command line (see testdata/ipvsshim/README).
type cmdlineCase struct {
	Args   []string `json:"args"`
	Exit   int      `json:"exit"`
	Stderr string   `json:"stderr"`
	Kernel string   `json:"kernel"` // the request ipvsadm sent, if any
	Note   string   `json:"note"`
}

func loadCmdlineCases(t testing.TB) []cmdlineCase {
	t.Helper()
	f, err := os.Open("testdata/cmdline.jsonl")
	require.NoError(t, err)
	defer f.Close()
	var cases []cmdlineCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c cmdlineCase
		require.NoError(t, json.Unmarshal(sc.Bytes(), &c))
		cases = append(cases, c)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, cases)
	return cases
}

// lookupParser resolves the two names the recorded cases use, as the
// machine that recorded them did.
var lookupParser = Parser{
	LookupHost: func(name string) (netip.Addr, bool) {
		if name == "localhost" {
			return netip.MustParseAddr("127.0.0.1"), true
		}
		return netip.Addr{}, false
	},
	LookupPort: func(name string, p lvs.Protocol) (uint16, bool) {
		if name == "http" && p == lvs.TCP {
			return 80, true
		}
		return 0, false
	},
}

// TestCmdlineMatchesIpvsadm checks every recorded command line: the same
// message and exit status on failure; on success the same request to the
// kernel, in the stand-in kernel's log format.
func TestCmdlineMatchesIpvsadm(t *testing.T) {
	for _, c := range loadCmdlineCases(t) {
		t.Run(strings.Join(c.Args, " "), func(t *testing.T) {
			cmd, err := lookupParser.Parse(c.Args)
			if c.Exit != 0 {
				require.Error(t, err)
				assert.Equal(t, c.Stderr, err.Error()+"\n")
				assert.Equal(t, c.Exit, ExitCode(err))
				return
			}
			require.NoError(t, err)
			if c.Kernel != "" {
				assert.Equal(t, c.Kernel, kernelRequest(cmd))
			}
		})
	}
}

// kernelRequest renders a command as the stand-in kernel logs the
// setsockopt ipvsadm makes for it.
func kernelRequest(cmd Command) string {
	op := map[Kind]int{CmdAddService: 2, CmdEditService: 3, CmdDeleteService: 4,
		CmdClear: 5, CmdAddServer: 7, CmdDeleteServer: 8, CmdEditServer: 9,
		CmdSetTimeout: 10, CmdStartDaemon: 11, CmdStopDaemon: 12, CmdZero: 15}[cmd.Kind]
	s := fmt.Sprintf("set %d", op)
	switch cmd.Kind {
	case CmdClear, CmdStartDaemon, CmdStopDaemon:
		return s
	case CmdSetTimeout:
		return s + fmt.Sprintf(" timeout %d %d %d", cmd.Timeouts.TCP, cmd.Timeouts.TCPFin, cmd.Timeouts.UDP)
	}
	svc := cmd.Service
	addr := "0.0.0.0"
	if svc.Addr.IsValid() {
		addr = svc.Addr.String()
	}
	flags := uint32(svc.Flags)
	if svc.Persistent {
		flags |= uint32(lvs.Persistent)
	}
	fl := "0"
	if flags != 0 {
		fl = fmt.Sprintf("%#x", flags)
	}
	s += fmt.Sprintf(" svc proto=%d addr=%s port=%d fwmark=%d sched=%s flags=%s timeout=%d netmask=%s",
		svc.Protocol, addr, svc.Port, svc.FWMark, svc.Scheduler, fl, svc.Timeout, inetNtoa(svc.Netmask))
	switch cmd.Kind {
	case CmdAddServer, CmdEditServer, CmdDeleteServer:
		d := cmd.Dest
		s += fmt.Sprintf(" dest addr=%s port=%d fwd=%d weight=%d uth=%d lth=%d",
			d.Addr, d.Port, d.Forward, d.Weight, d.UThreshold, d.LThreshold)
	}
	return s
}

func TestParseRefusesNamesByDefault(t *testing.T) {
	for _, args := range [][]string{
		{"-A", "-t", "localhost:80"},
		{"-A", "-t", "10.0.0.1:http"},
		{"-a", "-t", "10.0.0.1:80", "-r", "web1"},
	} {
		_, err := Parse(args)
		require.Error(t, err, args)
		assert.ErrorIs(t, err, ErrUsage)
		assert.Equal(t, ExitUsage, ExitCode(err))
		assert.Contains(t, err.Error(), "address[:port] specified")
	}
}

func TestParseSentinelsAndExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		want error
		code int
	}{
		{[]string{"-q"}, ErrTryHelp, 255},
		{[]string{"-L", "--bogus"}, ErrOption, 255},
		{[]string{"-A", "-t", "10.0.0.1"}, ErrUsage, 2},
	}
	for _, tt := range tests {
		_, err := Parse(tt.args)
		assert.ErrorIs(t, err, tt.want, tt.args)
		assert.Equal(t, tt.code, ExitCode(err), tt.args)
	}
	var e *Error
	_, err := Parse([]string{"bogus"})
	require.True(t, errors.As(err, &e))
	assert.Equal(t, "Try `xlbadm -h' or 'xlbadm --help' for more information.", e.Message("xlbadm"))
	assert.Equal(t, 0, ExitCode(nil))
	assert.Equal(t, 255, ExitCode(errors.New("other")))
}

func TestParseDefaults(t *testing.T) {
	cmd, err := Parse(nil)
	require.NoError(t, err)
	assert.Equal(t, CmdList, cmd.Kind)
	assert.False(t, cmd.List.Numeric)

	cmd, err = Parse([]string{"-A", "-t", "10.0.0.1:80", "-p"})
	require.NoError(t, err)
	assert.Equal(t, DefaultScheduler, cmd.Service.Scheduler)
	assert.True(t, cmd.Service.Persistent)
	assert.EqualValues(t, DefaultPersistentTimeout, cmd.Service.Timeout)
	assert.EqualValues(t, 0xffffffff, cmd.Service.Netmask)

	cmd, err = Parse([]string{"-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1"})
	require.NoError(t, err)
	assert.Equal(t, lvs.DR, cmd.Dest.Forward)
	assert.EqualValues(t, 1, cmd.Dest.Weight)
	assert.EqualValues(t, 80, cmd.Dest.Port)

	cmd, err = Parse([]string{"-A", "-f", "7", "-6", "-p"})
	require.NoError(t, err)
	assert.True(t, cmd.Service.Addr.Is6())
	assert.EqualValues(t, 128, cmd.Service.Netmask)

	cmd, err = Parse([]string{"-A", "-t", "[2001:db8::1]:443", "-p", "-M", "64"})
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("2001:db8::1"), cmd.Service.Addr)
	assert.EqualValues(t, 443, cmd.Service.Port)
	assert.EqualValues(t, 64, cmd.Service.Netmask)

	cmd, err = Parse([]string{"-h", "--bogus"})
	require.NoError(t, err)
	assert.Equal(t, CmdHelp, cmd.Kind)

	// ipvsadm 1.31 crashes on an -b with no flag in it; we refuse it.
	_, err = Parse([]string{"-A", "-t", "10.0.0.1:80", "-b", ","})
	require.Error(t, err)
	assert.Equal(t, "invalid scheduler flag `,'", err.Error())
}
