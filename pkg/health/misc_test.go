package health

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMiscCheckExitStatus(t *testing.T) {
	for _, tc := range []struct {
		code    int
		dynamic bool
		up      bool
		weight  *int
	}{
		{0, false, true, nil},
		{1, false, false, nil},
		{2, false, false, nil}, // 2..255 mean a weight only with misc_dynamic
		{255, false, false, nil},
		{0, true, true, nil}, // keepalived keeps the weight on 0
		{1, true, false, nil},
		{2, true, true, ptr(0)},
		{7, true, true, ptr(5)},
		{255, true, true, ptr(253)},
	} {
		t.Run(strconv.Itoa(tc.code)+map[bool]string{true: " dynamic"}[tc.dynamic], func(t *testing.T) {
			c := &MiscCheck{Path: "testdata/exit.sh " + strconv.Itoa(tc.code), Dynamic: tc.dynamic, Timeout: 5 * time.Second}
			r := c.Check(context.Background())
			assert.Equal(t, tc.up, r.Up, "%v", r.Err)
			assert.Equal(t, tc.weight, r.Weight)
			if !tc.up {
				assert.ErrorIs(t, r.Err, ErrScriptFailed)
				assert.Contains(t, r.Err.Error(), "exit status "+strconv.Itoa(tc.code))
			}
		})
	}
}

func ptr(v int) *int { return &v }

func TestMiscCheckKilledBySignal(t *testing.T) {
	r := (&MiscCheck{Path: "testdata/suicide.sh", Dynamic: true}).Check(context.Background())
	assert.False(t, r.Up)
	assert.ErrorIs(t, r.Err, ErrScriptFailed)
	assert.Contains(t, r.Err.Error(), "killed")
}

func TestMiscCheckNotFound(t *testing.T) {
	r := (&MiscCheck{Path: "testdata/no-such-script"}).Check(context.Background())
	assert.False(t, r.Up)
	assert.ErrorIs(t, r.Err, os.ErrNotExist)

	r = (&MiscCheck{Path: "  "}).Check(context.Background())
	assert.False(t, r.Up)
	assert.ErrorContains(t, r.Err, "empty command")

	r = (&MiscCheck{Path: `testdata/exit.sh "0`}).Check(context.Background())
	assert.False(t, r.Up)
	assert.ErrorContains(t, r.Err, "missing terminating")
}

// gone reports whether pid has exited: it no longer exists, or is a zombie
// waiting for a parent that is not this process.
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// pid (comm) STATE ...; comm may hold spaces, so look after the last ')'.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] == "Z"
}

func TestMiscCheckTimeoutKillsTheGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	c := &MiscCheck{Path: "testdata/hang.sh " + pidFile, Timeout: 300 * time.Millisecond}
	start := time.Now()
	r := c.Check(context.Background())
	took := time.Since(start)
	assert.False(t, r.Up)
	assert.ErrorIs(t, r.Err, ErrTimeout)
	assert.GreaterOrEqual(t, took, 300*time.Millisecond)
	assert.Less(t, took, killGrace, "SIGTERM ends the script; no SIGKILL wait")

	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return gone(child) }, 2*time.Second, 10*time.Millisecond,
		"the script's child %d outlived it", child)
}

func TestMiscCheckCancelled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	r := (&MiscCheck{Path: "testdata/hang.sh " + pidFile}).Check(ctx)
	assert.False(t, r.Up)
	assert.ErrorIs(t, r.Err, context.Canceled)
	assert.NotErrorIs(t, r.Err, ErrTimeout)
}

func TestMiscCheckArgumentsWithoutShell(t *testing.T) {
	out := filepath.Join(t.TempDir(), "args")
	for _, tc := range []struct {
		name  string
		check MiscCheck
		want  []string
	}{
		{"quoted misc_path", MiscCheck{Path: `testdata/args.sh ` + out + ` "a b" 'it"s' x\ y \x41\102 $HOME;ls "" *`},
			[]string{"a b", `it"s`, "x y", "AB", "$HOME;ls", "", "*"}},
		{"argument vector", MiscCheck{Args: []string{"testdata/args.sh", out, "a b", "'q'"}},
			[]string{"a b", "'q'"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.check.Check(context.Background())
			require.True(t, r.Up, "%v", r.Err)
			b, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.Equal(t, strings.Join(tc.want, "\n")+"\n", string(b))
		})
	}
}

func TestMiscCheckShell(t *testing.T) {
	line := `[ "$(echo shell | tr a-z A-Z)" = SHELL ] && exit 4`
	r := (&MiscCheck{Path: line, Shell: true, Dynamic: true}).Check(context.Background())
	assert.True(t, r.Up, "%v", r.Err)
	assert.Equal(t, ptr(2), r.Weight)

	// Without Shell the same line is the command "[" with literal
	// arguments, too many of them.
	r = (&MiscCheck{Path: line}).Check(context.Background())
	assert.False(t, r.Up)
	assert.ErrorContains(t, r.Err, "exit status 2")
	r = (&MiscCheck{Path: "exit 0"}).Check(context.Background())
	assert.False(t, r.Up, "exit is no program")
}

func TestMiscCheckUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a script as another user needs root")
	}
	r := (&MiscCheck{Path: "testdata/uid.sh 65534", User: "nobody", Timeout: 5 * time.Second}).Check(context.Background())
	assert.True(t, r.Up, "the script runs as nobody: %v", r.Err)
	r = (&MiscCheck{Path: "testdata/uid.sh 0", User: "nobody", Timeout: 5 * time.Second}).Check(context.Background())
	assert.False(t, r.Up, "the script does not run as root")
	r = (&MiscCheck{Path: "testdata/uid.sh 0", Timeout: 5 * time.Second}).Check(context.Background())
	assert.True(t, r.Up, "without a user it runs as we do: %v", r.Err)
	r = (&MiscCheck{Path: "testdata/uid.sh 65534", User: "65534", Timeout: 5 * time.Second}).Check(context.Background())
	assert.True(t, r.Up, "a uid names the user too: %v", r.Err)

	r = (&MiscCheck{Path: "testdata/uid.sh 0", User: "no-such-user-xlb"}).Check(context.Background())
	assert.False(t, r.Up)
	assert.ErrorContains(t, r.Err, "no-such-user-xlb")
}

func TestMiscCheckUserGroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a script as another user needs root")
	}
	cred, err := credential("nobody", "")
	require.NoError(t, err)
	assert.Equal(t, uint32(65534), cred.Uid)
	assert.NotContains(t, cred.Groups, uint32(0), "root's groups are not kept")
	cred, err = credential("nobody", "0")
	require.NoError(t, err)
	assert.Equal(t, uint32(0), cred.Gid, "a group by id")
}
