#!/usr/bin/env bash
# Records what keepalived itself (Debian 12's keepalived 2.2.7) says of each
# file of pkg/config/testdata/corpus: `keepalived -t -f FILE`, run in a fresh
# network namespace that has an interface for every interface name the file
# refers to. Writes pkg/config/testdata/corpus/verdicts/NN-name.txt: first
# line `exit N`, then keepalived's messages with the corpus path, pids and
# timestamps stripped. Needs root (network namespaces).
#
# usage: tools/corpus-verdicts.sh [FILE.conf ...]   (default: every corpus file)
set -euo pipefail

cd "$(dirname "$0")/.."
corpus=pkg/config/testdata/corpus
out=$corpus/verdicts

if [ "$(id -u)" -ne 0 ]; then
	echo "corpus-verdicts: must run as root (network namespaces)" >&2
	exit 1
fi
if ! command -v keepalived >/dev/null 2>&1; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y keepalived
fi
version=$(keepalived --version 2>&1 | sed -n 1p)
case "$version" in
*v2.2.7*) ;;
*) echo "corpus-verdicts: warning: $version is not keepalived 2.2.7; the verdicts will differ" >&2 ;;
esac

namespaces=()
work=$(mktemp -d)
cleanup() {
	local ns
	for ns in "${namespaces[@]}"; do
		ip netns del "$ns" 2>/dev/null || true
		rm -rf "/etc/netns/$ns"
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ifnames FILE: the interface names FILE refers to, one a line.
ifnames() {
	awk '
	function add(n) {
		gsub(/[;,"]/, "", n)
		# Not a name: macros ($X, ${X}), placeholders, addresses, "{".
		if (n !~ /^[A-Za-z][A-Za-z0-9_.-]*$/ || length(n) > 15) return
		if (n ~ /^(lo|weight|dev)$/) return
		print n
	}
	{
		line = $0
		gsub(/\r/, "", line)            # CRLF files
		gsub(/"[^"]*"/, "", line)       # quoted strings (scripts)
		sub(/[#!].*/, "", line)         # comments
		sub(/^[ \t]*@[^ \t]+/, "", line) # @conditional prefixes
		n = split(line, w, /[ \t]+/)
		for (i = 1; i <= n; i++) {
			if (w[i] == "") continue
			if (inblock) {
				if (w[i] == "}") { inblock = 0; continue }
				if (w[i] == "{") continue
				if (first) { add(w[i]); first = 0 }
				continue
			}
			if (w[i] ~ /^(interface|dev|lvs_sync_daemon|lvs_sync_daemon_interface|lvs_sync_daemon_inteface|bind_dev|bind_if|dpdk_interface|mcast_interface|vmac_xmit_base_interface)$/ && i < n)
				add(w[i+1])
			if (w[i] ~ /^(track_interface|linkbeat_interfaces|interfaces)$/) {
				inblock = 1; first = 1
				# entries on the same line after "{"
				for (j = i + 1; j <= n; j++) {
					if (w[j] == "{") continue
					if (w[j] == "}") { inblock = 0; break }
					if (first) { add(w[j]); first = 0 }
				}
				break
			}
		}
		first = 1   # each line inside a block names one interface first
	}' "$1" | sort -u
}

# srcaddrs FILE: "ADDRESS INTERFACE" for each unicast_src_ip / mcast_src_ip,
# with the interface of the vrrp_instance (or vrrp_sync_group...) block that
# holds it.
srcaddrs() {
	awk '
	{
		line = $0
		gsub(/\r/, "", line)
		gsub(/"[^"]*"/, "", line)
		sub(/[#!].*/, "", line)
		sub(/^[ \t]*@[^ \t]+/, "", line)
		n = split(line, w, /[ \t]+/)
		for (i = 1; i <= n; i++) {
			if (w[i] == "") continue
			if (w[i] == "interface" && i < n && depth == 1) iface = w[i+1]
			if ((w[i] == "unicast_src_ip" || w[i] == "mcast_src_ip") && i < n) addrs[++na] = w[i+1]
			if (w[i] == "{") depth++
			if (w[i] ~ /\{$/ && w[i] != "{") depth++
			if (w[i] == "}") {
				depth--
				if (depth == 0) {
					for (k = 1; k <= na; k++) print addrs[k], (iface == "" ? "-" : iface)
					na = 0; iface = ""
				}
			}
		}
	}
	END { for (k = 1; k <= na; k++) print addrs[k], (iface == "" ? "-" : iface) }' "$1"
}

# mkif NS NAME SEQ: an interface NAME that is up, in NS. A dummy where the
# kernel has the dummy driver, else one end of a veth pair, else a bridge.
mkif() {
	local ns=$1 name=$2 seq=$3
	if ip -n "$ns" link show "$name" >/dev/null 2>&1; then
		return
	fi
	if ip -n "$ns" link add "$name" type dummy 2>/dev/null; then
		:
	elif ip -n "$ns" link add "$name" type veth peer name "kcpeer$seq" 2>/dev/null; then
		ip -n "$ns" link set "kcpeer$seq" up
	else
		ip -n "$ns" link add "$name" type bridge
	fi
	ip -n "$ns" link set "$name" up
}

if [ $# -gt 0 ]; then
	files=("$@")
else
	files=("$corpus"/[0-9][0-9]-*.conf)
fi
mkdir -p "$out"
absdir=$(cd "$corpus" && pwd)

# netns FILE: the namespace a top-level `net_namespace NAME` line (not an
# @conditional one) puts keepalived in; keepalived -t silently exits 0 when
# /run/netns/NAME does not exist, so that namespace is the one to prepare.
netns() {
	awk '{ sub(/\r$/, "") } $1 == "net_namespace" && NF >= 2 { print $2; exit }' "$1"
}

# smtphosts FILE: the host names (not addresses) of smtp_server lines, which
# keepalived resolves; the namespace has no DNS, so they go in its hosts file.
smtphosts() {
	awk '{ sub(/\r$/, ""); sub(/[#!].*/, "") } $1 == "smtp_server" && NF >= 2 && $2 ~ /[a-zA-Z]/ && $2 !~ /:/ && $2 ~ /^[A-Za-z0-9.-]+$/ { print $2 }' "$1" | sort -u
}

for f in "${files[@]}"; do
	base=$(basename "$f" .conf)
	ns="kacorpus-$$-${base%%-*}"
	confns=$(netns "$f")
	if [ -n "$confns" ]; then
		if ip netns list | awk '{print $1}' | grep -qxF "$confns"; then
			echo "corpus-verdicts: $base: network namespace $confns exists already; not touching it" >&2
			exit 1
		fi
		ns=$confns
	fi
	ip netns add "$ns"
	namespaces+=("$ns")
	ip -n "$ns" link set lo up
	hosts=$(smtphosts "$f")
	if [ -n "$hosts" ]; then
		mkdir -p "/etc/netns/$ns"
		{
			cat /etc/hosts
			for h in $hosts; do echo "192.0.2.25 $h"; done
		} >"/etc/netns/$ns/hosts"
	fi
	seq=0
	declare -A made=()
	first_if=""
	while read -r name; do
		[ -n "$name" ] || continue
		seq=$((seq + 1))
		mkif "$ns" "$name" "$seq"
		made[$name]=1
		[ -n "$first_if" ] || first_if=$name
	done < <(ifnames "$f")
	if [ -z "$first_if" ]; then
		# keepalived needs no interface for an LVS-only file, but give
		# it one to find an address on.
		mkif "$ns" eth0 0
		made[eth0]=1
		first_if=eth0
	fi
	# Every interface gets an IPv4 address of its own (keepalived takes the
	# VRRP source address from its interface), from 198.18.0.0/15.
	i=0
	for name in "${!made[@]}"; do
		i=$((i + 1))
		ip -n "$ns" addr add "198.18.$i.1/24" dev "$name"
	done
	# ... and the unicast_src_ip / mcast_src_ip addresses the file names.
	while read -r addr dev; do
		case "$addr" in
		*[!0-9a-fA-F:.]* | "") continue ;;
		esac
		if [ "$dev" = - ] || [ -z "${made[$dev]:-}" ]; then dev=$first_if; fi
		case "$addr" in
		*:*) ip -n "$ns" addr add "$addr/64" dev "$dev" nodad 2>/dev/null || true ;;
		*) ip -n "$ns" addr add "$addr/24" dev "$dev" 2>/dev/null || true ;;
		esac
	done < <(srcaddrs "$f")
	unset made

	# Run on a copy in an empty folder, with the bare file name: the
	# messages do not depend on where the repository is, and what keepalived
	# writes relative to its working directory (config_save_dir ...) stays
	# out of the repository.
	rm -rf "$work/run"
	mkdir "$work/run"
	cp "$f" "$work/run/$base.conf"
	set +e
	msgs=$(cd "$work/run" && ip netns exec "$ns" keepalived -t -f "$base.conf" 2>&1 </dev/null)
	rc=$?
	set -e
	{
		echo "exit $rc"
		# Strip the corpus path, pids and syslog-style timestamps.
		printf '%s\n' "$msgs" |
			sed -e "s#$work/run/##g" -e "s#$absdir/##g" \
				-e 's/\[[0-9][0-9]*\]//g' \
				-e 's/^[A-Z][a-z][a-z] [A-Z][a-z][a-z] [ 0-9][0-9] [0-9:]* [0-9]*: //' |
			sed -e '/^$/d'
	} >"$out/$base.txt"
	echo "$base: exit $rc"

	ip netns del "$ns"
	rm -rf "/etc/netns/$ns"
	unset 'namespaces[-1]'
done
