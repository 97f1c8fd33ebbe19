package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bigConfig is a keepalived.conf of n virtual servers of reals reals
// each, with TCP checks, as a big director's file is.
func bigConfig(n, reals int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "virtual_server 10.90.%d.%d 80 {\n    delay_loop 6\n    lb_algo wlc\n    lb_kind DR\n    protocol TCP\n", i>>8, i&255)
		for r := range reals {
			fmt.Fprintf(&b, "    real_server 10.91.%d.%d 80 {\n        weight 1\n        TCP_CHECK { connect_timeout 3 }\n    }\n", r>>8, r&255+1)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// BenchmarkCheck10k is `xlb check` of a file of 10k virtual servers of 32
// reals (320k real_server blocks, about 30 MB), sized for it: ms per check.
func BenchmarkCheck10k(b *testing.B) {
	f := filepath.Join(b.TempDir(), "keepalived.conf")
	if err := os.WriteFile(f, []byte(bigConfig(10000, 32)), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		var out, errb bytes.Buffer
		if code := run(env{stdout: &out, stderr: &errb}, []string{"check", "-f", f, "--dataplane", "xdp",
			"--max-services", "10000", "--max-reals", "320000", "--max-sched-entries", "1000000"}); code != 0 {
			b.Fatalf("xlb check: exit %d: %s", code, errb.String())
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/check")
	b.ReportMetric(0, "ns/op")
}
