package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/ipvsadm"
	"github.com/xlbproject/xlb/pkg/sched"
)

// completions runs the bash completion for line (its last word is being
// completed) with dir first on PATH, and returns the candidates sorted.
func completions(t *testing.T, dir, line string) []string {
	t.Helper()
	words := strings.Fields(line)
	if strings.HasSuffix(line, " ") {
		words = append(words, "")
	}
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = "'" + w + "'"
	}
	fn := map[string]string{"xlb": "_xlb", "xlbadm": "_xlbadm"}[words[0]]
	script, err := filepath.Abs("../../contrib/bash-completion/xlb")
	require.NoError(t, err)
	cmd := exec.Command("bash", "-c", `complete() { :; }; source "$1"; COMP_WORDS=(`+strings.Join(quoted, " ")+`); COMP_CWORD=`+
		string(rune('0'+len(words)-1))+`; `+fn+`; printf '%s\n' "${COMPREPLY[@]}"`, "bash", script)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	got := strings.Fields(string(out))
	slices.Sort(got)
	return got
}

// The completion script: xlb's commands and flags come from the binary's
// own help (so they cannot drift); xlbadm's options are ipvsadm's, its
// services and reals the running daemon's (here a stand-in xlbadm
// printing a listing).
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("bash: %v", err)
	}
	dir := t.TempDir()
	self, err := os.Executable()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "xlb"), []byte("#!/bin/sh\n"+mainEnv+"=1 exec "+self+" \"$@\"\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "xlbadm"), []byte(`#!/bin/sh
if [ "$2" = "-t" ]; then
cat <<'L'
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.77.1.100:80 mh
  -> 10.77.0.11:80                Route   1      0          0
  -> 10.77.0.12:80                Route   1      0          0
L
exit
fi
cat <<'L'
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.77.1.100:80 mh
  -> 10.77.0.11:80                Route   1      0          0
  -> 10.77.0.12:80                Route   1      0          0
TCP  10.77.1.100:443 wlc
  -> 10.77.0.11:443               Route   1      0          0
UDP  10.77.1.100:53 rr
  -> 10.77.0.11:53                Route   1      0          0
L
`), 0o755))

	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	slices.Sort(names)
	assert.Equal(t, names, completions(t, dir, "xlb "))
	assert.Equal(t, []string{"--bgp-config", "--bgp-drain", "--bgp-vips"}, completions(t, dir, "xlb run --bgp"))
	assert.Equal(t, []string{"--max-conns", "--max-fullnat-flows", "--max-half-open", "--max-reals", "--max-sched-entries", "--max-services"}, completions(t, dir, "xlb check --max"))
	assert.Equal(t, []string{"auto", "ipvs", "xdp"}, completions(t, dir, "xlb run --dataplane "))

	assert.Equal(t, []string{"10.77.1.100:443", "10.77.1.100:80"}, completions(t, dir, "xlbadm -e -t "))
	assert.Equal(t, []string{"10.77.1.100:53"}, completions(t, dir, "xlbadm -D -u "))
	assert.Equal(t, []string{"10.77.0.11:80", "10.77.0.12:80"}, completions(t, dir, "xlbadm -e -t 10.77.1.100:80 -r "))

	// The lists the script holds are ipvsadm's help and xlb's registry.
	var help strings.Builder
	require.NoError(t, ipvsadm.WriteUsage(&help, "ipvsadm"))
	opts := regexp.MustCompile(`(?:^|[\s|\[])(--?[A-Za-z0-9][a-z0-9-]*)`).FindAllStringSubmatch(help.String(), -1)
	var want []string
	for _, m := range opts {
		if !slices.Contains(want, m[1]) && m[1] != "-" {
			want = append(want, m[1])
		}
	}
	slices.Sort(want)
	assert.Equal(t, want, completions(t, dir, "xlbadm -"))
	schedulers := sched.Names(nil)
	slices.Sort(schedulers)
	assert.Equal(t, schedulers, completions(t, dir, "xlbadm -A -t 10.0.0.1:80 -s "))
	var flags []string
	for _, s := range sched.Schedulers {
		for _, f := range s.Flags {
			flags = append(flags, f.Name)
		}
	}
	flags = append(flags, "flag-1", "flag-2", "flag-3")
	slices.Sort(flags)
	assert.Equal(t, flags, completions(t, dir, "xlbadm -A -t 10.0.0.1:80 -b "))
}
