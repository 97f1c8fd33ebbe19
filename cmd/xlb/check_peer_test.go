package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// peerConf is a director's file: one vrrp_instance tracking a script.
func peerConf(prio, weight int, auth string) string {
	return fmt.Sprintf(`vrrp_script chk {
    script "/bin/true"
    weight %d
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass %s
    }
    virtual_ipaddress {
        10.0.0.100/24
    }
    track_script {
        chk
    }
}
`, weight, prio, auth)
}

func writeConfs(t *testing.T, texts ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i, text := range texts {
		p := filepath.Join(dir, fmt.Sprintf("lb%d.conf", i+1))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		paths = append(paths, p)
	}
	return paths
}

func TestCheckPeer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		confs []string
		code  int
		out   []string
	}{
		{
			name:  "a correct pair",
			confs: []string{peerConf(150, -60, "secret"), peerConf(120, -60, "secret")},
			code:  0,
			out:   []string{"election: OK: no combination loses or splits a VIP: 1 virtual routers on 2 directors"},
		},
		{
			name:  "weight too small: the failed MASTER keeps the VIP, exit 1",
			confs: []string{peerConf(150, -20, "secret"), peerConf(120, -20, "secret")},
			code:  1,
			out: []string{
				"error: VRID 51 IPv4: when vrrp_script chk (", "lb1.conf:5 VI_1, its priority goes from 150 to 130 and it stays MASTER",
				"smallest weight that moves the VIP is -31", "election: FAIL",
			},
		},
		{
			name:  "different auth_pass: two MASTERs, exit 1",
			confs: []string{peerConf(150, -60, "secret"), peerConf(120, -60, "other")},
			code:  1,
			out:   []string{"error: VRID 51 IPv4: ", "both claim MASTER with every director healthy", "auth_pass differs", "election: FAIL"},
		},
		{
			name:  "a trio",
			confs: []string{peerConf(150, -60, "secret"), peerConf(120, -60, "secret"), peerConf(120, -60, "secret")},
			code:  0,
			out:   []string{"warning: VRID 51 IPv4: ", "both have priority 120", "on 3 directors"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			paths := writeConfs(t, tc.confs...)
			args := []string{"check", "-f", paths[0]}
			for _, p := range paths[1:] {
				args = append(args, "--peer", p)
			}
			code, out, errOut := runCmd(args...)
			assert.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			for _, w := range tc.out {
				assert.Contains(t, out, w)
			}
		})
	}
}

func TestCheckPeerErrors(t *testing.T) {
	paths := writeConfs(t, peerConf(150, -60, "secret"), "vrrp_instance VI_1 {\n    virtual_router_id 51\n}\n")

	code, _, errOut := runCmd("check", "-f", paths[0], "--peer", filepath.Join(filepath.Dir(paths[0]), "missing.conf"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "error: ")

	code, _, errOut = runCmd("check", "-f", paths[0], "--peer", paths[1])
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, "lb2.conf:1")

	code, _, errOut = runCmd("check", "-f", paths[0], "--peer", paths[0])
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "is the file being checked")

	code, _, errOut = runCmd("check", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, errOut, "--peer")
}

// One file for both directors, told apart by keepalived's "@ID" lines and
// each director's config id.
func TestCheckPeerSharedFile(t *testing.T) {
	shared := `vrrp_script chk {
    script "/bin/true"
    weight -20
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    @lb1 priority 150
    @lb2 priority 120
    advert_int 1
    virtual_ipaddress {
        10.0.0.100/24
    }
    track_script {
        chk
    }
}
`
	paths := writeConfs(t, shared)
	code, out, errOut := runCmd("check", "-f", paths[0], "--config-id", "lb1", "--peer", paths[0]+"@lb2")
	assert.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "from 150 to 130 and it stays MASTER")
	assert.Contains(t, out, "(director "+paths[0]+"@lb1)")
	assert.Contains(t, out, "(director "+paths[0]+"@lb2), has 120")
}
