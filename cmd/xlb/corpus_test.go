package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// corpusGaps are the corpus files keepalived runs and xlb check still
// refuses on IPVS, each with the line that says why. The test fails when
// one of them is accepted, so that the entry goes with the gap.
var corpusGaps = map[string]string{}

// xdpNeedsIPVS are the refusals of the XDP data plane that --dataplane
// auto answers with IPVS: what XDP cannot forward, named at its line.
var xdpNeedsIPVS = regexp.MustCompile(`^error: \S+:\d+: .*(tunnel checksum option \w+ is not supported by the XDP data plane|` +
	`lvs_method \w+ for an IPv6 service is not supported by the XDP data plane yet|` +
	`port 0 \(all-ports services\) is not supported by the XDP data plane|` +
	`firewall-mark services are not supported by the XDP data plane|scheduler \w+ is not supported by the XDP data plane|` +
	`an IPv\d real of an IPv\d service needs tunnel forwarding)`)

// ipvsNeedsXDP is what IPVS refuses in a file written for the keepalived
// that ships with DPVS: FULLNAT (keepalived 2.2.7 misreads lb_kind FNAT,
// "unknown routing method", as NAT; xlb reads it as DPVS's keepalived
// does), which the kernel's IPVS does not have and XDP does.
var ipvsNeedsXDP = regexp.MustCompile(`^error: \S+:\d+: .*lvs_method FNAT is not supported by the IPVS data plane`)

// fnatWithoutLaddrs is a FULLNAT virtual server whose local_address_group
// is not in the file: no data plane can serve it (DPVS would not either).
var fnatWithoutLaddrs = regexp.MustCompile(`^error: \S+:\d+: .*FULLNAT \(lvs_method FNAT\) needs local addresses`)

// errorLines are the error lines of xlb check's standard error.
func errorLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.HasPrefix(l, "error: ") {
			out = append(out, l)
		}
	}
	return out
}

// TestCorpus: the keepalived.conf files in pkg/config/testdata/corpus,
// collected from public repositories, each with keepalived 2.2.7's own
// verdict (keepalived -t, tools/corpus-verdicts.sh). Every file keepalived
// runs (-t exits 0, 5 or 6: no error, configuration errors it carries on
// from, script security), xlb check --dataplane ipvs accepts, and
// --dataplane xdp accepts or refuses only what needs IPVS, naming each
// line; a file keepalived refuses (2, 4), xlb refuses.
func TestCorpus(t *testing.T) {
	files, err := filepath.Glob("../../pkg/config/testdata/corpus/*.conf")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 30)
	runs := 0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".conf")
		t.Run(name, func(t *testing.T) {
			v, err := os.ReadFile(filepath.Join(filepath.Dir(f), "verdicts", name+".txt"))
			require.NoError(t, err, "every corpus file has keepalived's verdict")
			first, _, _ := strings.Cut(string(v), "\n")
			code, err := strconv.Atoi(strings.TrimPrefix(first, "exit "))
			require.NoError(t, err, "verdict %q", first)
			kaRuns := code == 0 || code == 5 || code == 6

			var ipvsErr strings.Builder
			ipvs := run(env{stdout: io.Discard, stderr: &ipvsErr}, []string{"check", "-f", f, "--dataplane", "ipvs"})
			switch gap, known := corpusGaps[name]; {
			case !kaRuns:
				assert.Equal(t, 1, ipvs, "keepalived refuses it (exit %d); so must xlb", code)
				return
			case known:
				assert.Equal(t, 1, ipvs, "a known gap was closed: remove %s from corpusGaps", name)
				assert.Contains(t, ipvsErr.String(), gap)
				return
			default:
				runs++
				fnat := ipvs != 0 && len(errorLines(ipvsErr.String())) > 0
				for _, l := range errorLines(ipvsErr.String()) {
					fnat = fnat && ipvsNeedsXDP.MatchString(l)
				}
				if !fnat {
					assert.Equal(t, 0, ipvs, "keepalived runs it (exit %d); xlb on IPVS refuses:\n%s", code, ipvsErr.String())
				}
			}

			var xdpErr strings.Builder
			if run(env{stdout: io.Discard, stderr: &xdpErr}, []string{"check", "-f", f, "--dataplane", "xdp"}) == 0 {
				return
			}
			for _, l := range errorLines(xdpErr.String()) {
				if fnatWithoutLaddrs.MatchString(l) {
					continue
				}
				assert.Regexp(t, xdpNeedsIPVS, l, "an XDP refusal that IPVS would not fix, or without its line")
			}
		})
	}
	t.Logf("%d corpus files; xlb runs the %d keepalived runs, but for %d known gaps", len(files), runs, len(corpusGaps))
}
