// Package webui serves the director's status page: one self-contained
// HTML page (no external assets: it works offline) that polls the
// director's status as JSON and shows each service and real with health,
// weights, connections and live rates (as ipvsadm -Ln --rate computes
// them, from the counters' change), the VRRP instances, and small graphs
// of the last minutes. Read-only: it has no control actions.
package webui

import (
	_ "embed"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/xlbproject/xlb/pkg/control"
)

//go:embed index.html
var page []byte

// Handler serves the page at / and the status at /status.json.
func Handler(status func() (control.Status, error), log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		st, err := status()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(struct {
			Time time.Time `json:"time"`
			control.Status
		}{time.Now(), st})
	})
	return mux
}
