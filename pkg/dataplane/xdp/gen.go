package xdp

import (
	"crypto/sha256"
	"encoding/hex"
)

//go:generate go tool bpf2go -cc clang-14 -cflags "-mcpu=v3 -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel -type svc_key -type svc -type real -type conn_key -type conn_key6 -type conn -type counters -type xlb_stat -type conn_counts -type sweep_count -type xlb_ct_state -type tmpl_key -type tmpl -type xlb_sched -type xlb_svc_flags -type xlb_real_flags -type xlb_conn_flags -type xlb_addr -type vip_key -type nat_reply -type defence -type sweep_total -type tunnel -type xlb_tun_type -type check_target -type laddr -type laddr_set -type fnat_port -type ft_slot -type ft_meta xlb ../../../bpf/xdp_lb.bpf.c
//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel -output-suffix _test -type bench_tmpl bench ../../../bpf/bench.bpf.c

// ObjectSHA256 is the SHA-256 of the BPF object this build carries
// (xlb_bpfel.o), as hex: `xlb version` prints it, so that a running
// program can be matched to its source.
func ObjectSHA256() string {
	sum := sha256.Sum256(_XlbBytes)
	return hex.EncodeToString(sum[:])
}
