package ipvsadm

import (
	"bufio"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt from the formatters")

type goldenCase struct {
	name, fixture string
	args          []string
}

func loadGoldenCases(t *testing.T) []goldenCase {
	t.Helper()
	f, err := os.Open("testdata/golden/cases.txt")
	require.NoError(t, err)
	defer f.Close()
	var cases []goldenCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		require.GreaterOrEqual(t, len(fields), 3, sc.Text())
		cases = append(cases, goldenCase{fields[0], fields[1], fields[2:]})
	}
	require.NoError(t, sc.Err())
	return cases
}

// TestGolden runs each listing command line through Parse and Exec against
// a fixture and compares the output with testdata/golden/<name>.txt.
func TestGolden(t *testing.T) {
	for _, c := range loadGoldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			mk, ok := fixtures[c.fixture]
			require.True(t, ok, "fixture %q", c.fixture)
			cmd, err := Parse(c.args)
			require.NoError(t, err)
			cmd.List.Names = testNames{}
			var out strings.Builder
			require.NoError(t, mk().Exec(&out, cmd))
			path := filepath.Join("testdata", "golden", c.name+".txt")
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(out.String()), 0o644))
				return
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, string(want), out.String())
		})
	}
}
