#!/usr/bin/env bash
# Installs what xlb's build, demo and tests need on Debian, and only what is
# missing, so running it again is cheap. Needs root (apt-get).
#   tools/deps.sh run      what `make demo` needs: iproute2, ethtool, util-linux, procps, Go
#   tools/deps.sh test     plus clang 14, llvm, libbpf-dev (regenerating BPF objects),
#                          keepalived (the VRRP peer), ipvsadm (its goldens' check),
#                          bird2 (the ECMP router the BGP scale-out tests peer with),
#                          groff-base (the man pages' rendering check),
#                          chromium (the status page's test in a real browser)
#                          netbase (/etc/services, for port names),
#                          lintian and debootstrap (the Debian package's checks),
#                          nftables (BenchmarkForwardRate's nft DNAT contender)
#   tools/deps.sh vmtest   plus what `make vmtest` needs: QEMU, kmod, cpio, the
#                          archive keyring, and the binaries copied into the guest
#                          (busybox, ipvsadm, ip, nsenter, modprobe, ethtool,
#                          keepalived, setpriv, bird, birdc), clang-14 for the ipvsadm shim
set -euo pipefail
what=${1:-run}

pkgs=(iproute2 ethtool util-linux procps make git)
if [[ $what == test ]]; then
	# netbase: /etc/services, which xlbadm reads port names from, as ipvsadm.
	# lintian, debootstrap: the Debian package's checks (tools/deb.sh, tools/deb-test.sh).
	pkgs+=(clang-14 llvm libbpf-dev linux-libc-dev keepalived ipvsadm netbase bird2 groff-base chromium lintian debootstrap nftables)
elif [[ $what == vmtest ]]; then
	# vmtest/ copies the host's ip, nsenter, ipvsadm, kmod and ethtool (with
	# their libraries) into the guest, next to busybox.
	# keepalived: the VRRP peer of the host suite in the guest; clang-14:
	# builds the ipvsadm shim the guest runs its goldens' check against.
	pkgs+=(qemu-system-x86 kmod cpio xz-utils zstd debian-archive-keyring ipvsadm keepalived clang-14 netbase bird2)
	# busybox and busybox-static conflict; either will do.
	if ! dpkg-query -W -f='${Status}' busybox 2>/dev/null | grep -q "ok installed"; then
		pkgs+=(busybox-static)
	fi
fi
if ! command -v go >/dev/null && [[ ! -x /usr/local/go/bin/go ]]; then
	# Debian's Go is older than go.mod asks for; with GOTOOLCHAIN=auto it
	# fetches the right toolchain from the Go module proxy.
	pkgs+=(golang-go)
fi

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	if [[ $(id -u) != 0 ]]; then
		echo "deps: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
