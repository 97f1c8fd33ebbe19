package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// described are the collector's metrics with their labels, from its own
// descriptions.
func described(t *testing.T) map[string][]string {
	ch := make(chan *prometheus.Desc, 100)
	(&Collector{}).Describe(ch)
	close(ch)
	re := regexp.MustCompile(`fqName: "([a-z0-9_]+)".*variableLabels: \{([^}]*)\}`)
	out := map[string][]string{}
	for d := range ch {
		m := re.FindStringSubmatch(d.String())
		require.NotNil(t, m, "%s", d)
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
		out[m[1]] = labels
	}
	return out
}

// The Grafana dashboard in contrib/ queries only metrics the director
// exports, and groups and names series only by labels they have (or
// Prometheus's own: instance, job, and exported_instance for a metric
// whose own instance label the target's displaces).
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../contrib/grafana/xlb-dashboard.json")
	require.NoError(t, err)
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr, LegendFormat string }
		}
	}
	require.NoError(t, json.Unmarshal(b, &dash))
	require.NotEmpty(t, dash.Panels)
	have := described(t)
	metricRe := regexp.MustCompile(`\bxlb_[a-z0-9_]+`)
	byRe := regexp.MustCompile(`by \(([^)]*)\)`)
	legendRe := regexp.MustCompile(`\{\{\s*([a-z_]+)\s*\}\}`)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Targets, "panel %q queries nothing", p.Title)
		for _, tg := range p.Targets {
			names := metricRe.FindAllString(tg.Expr, -1)
			require.NotEmpty(t, names, "panel %q: %q queries no xlb metric", p.Title, tg.Expr)
			labels := map[string]bool{"instance": true, "job": true}
			for _, n := range names {
				l, ok := have[n]
				if !assert.True(t, ok, "panel %q: %s is not a metric xlb exports", p.Title, n) {
					continue
				}
				used[n] = true
				for _, x := range l {
					labels[x] = true
					if x == "instance" {
						labels["exported_instance"] = true
					}
				}
			}
			var want []string
			for _, m := range byRe.FindAllStringSubmatch(tg.Expr, -1) {
				for _, l := range strings.Split(m[1], ",") {
					want = append(want, strings.TrimSpace(l))
				}
			}
			for _, m := range legendRe.FindAllStringSubmatch(tg.LegendFormat, -1) {
				want = append(want, m[1])
			}
			for _, l := range want {
				assert.True(t, labels[l], "panel %q: label %q is on none of %v", p.Title, l, names)
			}
		}
	}
	var unused []string
	for n := range have {
		if !used[n] {
			unused = append(unused, n)
		}
	}
	slices.Sort(unused)
	t.Logf("metrics the dashboard does not show: %v", unused)
}
