package probe

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// ProgTestRun runs an XDP_PASS program once through BPF_PROG_TEST_RUN on a
// zeroed 64-byte frame and checks that it returned XDP_PASS.
func ProgTestRun() error {
	if err := checkDeny(FeatureProgTestRun); err != nil {
		return err
	}
	return progTestRun()
}

func progTestRun() error {
	prog, err := program(ebpf.XDP, 2) // XDP_PASS
	if err != nil {
		return err
	}
	defer prog.Close()
	ret, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
	if err != nil {
		return fmt.Errorf("BPF_PROG_TEST_RUN of an XDP program: %w", err)
	}
	if ret != 2 {
		return fmt.Errorf("BPF_PROG_TEST_RUN of an XDP program returned %d, want 2 (XDP_PASS)", ret)
	}
	return nil
}
