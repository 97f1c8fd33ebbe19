package testutil

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Series is one sample of a scrape: its labels and its value.
type Series struct {
	Labels map[string]string
	Value  float64
}

// Metrics are a scrape's samples by metric name.
type Metrics map[string][]Series

// ParseMetrics reads the Prometheus text format with Prometheus' own
// parser, as a Prometheus server would.
func ParseMetrics(r io.Reader) (Metrics, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := Metrics{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			s := Series{Labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.Labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				s.Value = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				s.Value = m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				s.Value = m.GetUntyped().GetValue()
			default:
				continue // summaries and histograms: not needed
			}
			out[name] = append(out[name], s)
		}
	}
	return out, nil
}

// Scrape fetches url with c and parses it.
func Scrape(c *http.Client, url string) (Metrics, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// Get is the value of the one sample of name whose labels include the
// given ones (name, value pairs); an error if there is not exactly one.
func (m Metrics) Get(name string, labels ...string) (float64, error) {
	var found []Series
	for _, s := range m[name] {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if s.Labels[labels[i]] != labels[i+1] {
				match = false
				break
			}
		}
		if match {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		var all []string
		for _, s := range m[name] {
			all = append(all, fmt.Sprint(s.Labels))
		}
		sort.Strings(all)
		return 0, fmt.Errorf("%s%v: %d samples match (the scrape has %s)", name, labels, len(found), strings.Join(all, " "))
	}
	return found[0].Value, nil
}
