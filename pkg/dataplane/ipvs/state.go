package ipvs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/xlbproject/xlb/pkg/dataplane"
)

// stateFile is what Options.StateFile holds.
type stateFile struct {
	Services []dataplane.ServiceKey `json:"services"`
}

func readState(path string) ([]dataplane.ServiceKey, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read IPVS state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read IPVS state %s: %w", path, err)
	}
	return st.Services, nil
}

// saveState records the owned services; with none, the file goes. A
// failure is logged, not returned: the services forward all the same, and
// only a restarted xlb's clean-up is at stake.
func (v *Dataplane) saveState() {
	if err := v.writeState(); err != nil {
		v.log.Warn("cannot record xlb's IPVS services; a restarted xlb will not remove those that left the configuration meanwhile", "error", err)
	}
}

// writeState writes the state file beside itself and renames it into
// place, so that a crash leaves the old list or the new.
func (v *Dataplane) writeState() error {
	path := v.opts.StateFile
	if path == "" {
		return nil
	}
	if len(v.owned) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove IPVS state: %w", err)
		}
		return nil
	}
	st := stateFile{}
	for k := range v.owned {
		st.Services = append(st.Services, k)
	}
	slices.SortFunc(st.Services, compareKeys)
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("write IPVS state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write IPVS state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write IPVS state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write IPVS state: %w", err)
	}
	return nil
}
