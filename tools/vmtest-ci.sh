#!/usr/bin/env bash
# make vmtest-ci: what make test runs in a Debian 6.1 VM (a stock Debian 12
# kernel, IPVS loaded), on two VMs at once, one per host CPU (TCG runs a
# guest on one host thread): one VM for the IPVS side (data plane,
# fallback, ipvsadm goldens against the real ipvsadm and the kernel,
# keepalived interop, scripts, VRRP) and then the daemon's tests that need
# the kernel's IPVS or its tunnel devices; the other for the XDP data
# plane's (end to end with the kernel's tunnel devices, the behaviour suite,
# the verifier on 6.1). What the host's kernel runs as well (golden frames
# through BPF_PROG_TEST_RUN) is left to the host's run. Logs under
# vmtest-out/ci-{ipvs,daemon,xdp}; a line says when each side is done, and
# every log is printed at the end. (With the verifier's walk cut to 40%,
# 2026-12-06, the XDP side took 692 s and the other 1020 s with the XDP
# tunnel tests run after the daemon's; they are back on the XDP side.)
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
tools/deps.sh vmtest
$GO build -o bin/vmtest ./vmtest
# The kernel once, before two runs would unpack it at once.
bin/vmtest fetch 6.1 >/dev/null
mkdir -p vmtest-out
ipvs_pkgs='./pkg/dataplane/ipvs/ ./pkg/probe/ ./pkg/ipvsadm/ ./pkg/scripts/ ./pkg/vrrp/ ./pkg/vrrpd/'
# The daemon's and the XDP data plane's tests that need this kernel.
xdp_tests=(
	TestRunOnIPVS TestBehaviour TestDRHTTP TestNATEndToEnd TestNATReplyWaitsForARP
	TestTunnelGoldenPackets TestIPv6TunnelGoldenPackets
	TestIPv6DRGoldenPackets TestIPv6DRHTTP TestNAT66GoldenPackets
	TestNAT66HTTP TestIPv6ICMPErrors TestFULLNATGoldenPackets TestFULLNATICMPErrors TestFULLNATTOA
	TestFULLNATEndToEnd TestFULLNAT6GoldenPackets TestFULLNAT6EndToEnd
	TestNAT64GoldenPackets TestNAT64EndToEnd TestNAT64ICMPErrors TestNAT46GoldenPackets TestNAT46EndToEnd
	TestNAT46ICMPErrors TestNAT46FromKeepalivedConf
	TestFULLNATFromKeepalivedConf TestVerifierBudget TestCheckThroughVIP TestCheckThroughVIP6
	TestStandbyFollowsTheRole TestXlbadmDrivesDaemon TestGoldenPackets TestXDPFuzzFindings
	TestScriptSecurityAgainstUnprivilegedUser TestVRRPTrackScript TestECMPMixedFleet
	TestSyncWithKernelIPVS TestAdoptIPVSDirector TestFailoverKeepsConnectionsWithIPVS
	TestUnitCapabilities TestTUNEndToEnd TestIPv6TUNEndToEnd TestTUNAcrossFamiliesEndToEnd
	TestFlowHintsChangeNothing TestFlowHintsServe TestJiffyClockOnThisKernel TestFlowHintsChangeNothingNAT
	TestFlowHintsServeNAT TestFlowHintsChangeNothingFULLNAT TestFlowHintsServeFULLNAT
	TestFlowHintsChangeNothing6 TestFlowHintsServe6 TestFlowTableHoldsEveryFlow TestFlowTableKeptAcrossRestart TestFlowTableAdoptsLRUFlows
)
t0=$SECONDS
flags="-test.run=^($(IFS='|'; echo "${xdp_tests[*]}"))\$ -test.timeout=40m"
vm() { # name, packages, [test flags]
	local out=vmtest-out/ci-$1
	bin/vmtest run --quiet --no-deps --out "$out" --pkgs "$2" ${3:+--testflags "$3"} 6.1 >"$out.log" 2>&1
}
{
	rc=0
	vm ipvs "$ipvs_pkgs" || rc=1
	vm daemon ./pkg/daemon/ "$flags" || rc=1
	exit $rc
} &
declare -A side=([$!]="ipvs, then daemon")
vm xdp ./pkg/dataplane/xdp/ "$flags" &
side[$!]=xdp
echo "vmtest-ci: two 6.1 VMs started (ipvs, then daemon; xdp); logs in vmtest-out/ci-{ipvs,daemon,xdp}.log"
failed=0
for _ in 1 2; do
	rc=0
	wait -n -p pid || rc=$?
	echo "vmtest-ci: ${side[$pid]} done after $((SECONDS - t0)) s, exit $rc"
	[[ $rc == 0 ]] || failed=1
done
# What a failed test printed (its last 150 lines): CI keeps only this output.
failed_output() { # test.log
	awk '/^=== RUN   [^\/ ]+$/ { n = 0 } { buf[n++ % 150] = $0 }
		/^--- FAIL: / { for (i = (n > 150 ? n - 150 : 0); i < n; i++) print buf[i % 150]; n = 0 }
		/^--- (PASS|SKIP): / { n = 0 }' "$1"
}
for s in ipvs daemon xdp; do
	[[ -f vmtest-out/ci-$s.log ]] || continue
	echo "=== vmtest-ci: $s"
	cat "vmtest-out/ci-$s.log"
	if grep -q -- '--- FAIL' "vmtest-out/ci-$s/6.1/test.log" 2>/dev/null; then
		echo "=== vmtest-ci: $s: what the failed tests printed"
		failed_output "vmtest-out/ci-$s/6.1/test.log"
	fi
done
exit $failed
