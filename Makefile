# xlb: see README.md. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
export PATH := /usr/local/go/bin:$(PATH)
export GOTOOLCHAIN ?= auto

.PHONY: help demo test unit generate check-generate lint bench chaos fuzz build deps clean

## help: list the targets
help:
	@awk '/^## /{ sub(/^## /, ""); n = index($$0, ":"); printf "  %-15s %s\n", substr($$0, 1, n-1), substr($$0, n+2) }' $(MAKEFILE_LIST)

## build: build bin/xlb and bin/xlbadm (xlb version: tools/version.sh)
build:
	$(GO) build -buildmode=pie -trimpath -ldflags "$(LDFLAGS)" -o bin/xlb ./cmd/xlb
	$(GO) build -buildmode=pie -trimpath -o bin/xlbadm ./cmd/xlbadm
LDFLAGS = -X main.version=$(shell tools/version.sh) -X main.commit=$(shell tools/version.sh commit)

## deb: build bin/xlb_VERSION_amd64.deb (dpkg-deb) and check it with lintian: tools/deb.sh
.PHONY: deb
deb: build
	tools/deb.sh

## demo: forward real HTTP through xlb on a built-in namespace topology (root)
demo: build
	@tools/deps.sh run
	./bin/xlb demo

## test: everything CI runs: stale-BPF check, gofmt, vet, the whole test suite (root), the chaos run's verdicts, the Debian package (lintian, installed and purged in a fresh Debian 12 root), then the 6.1 VM (vmtest-ci)
test:
	@tools/deps.sh test
	tools/check-generate.sh
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) run ./tools/chaos
	tools/deb.sh
	tools/deb-test.sh
	$(MAKE) vmtest-ci

## unit: the tests that need no root and no kernel features
unit:
	$(GO) test -count=1 ./pkg/sched/... ./pkg/config/... ./pkg/vrrp/... ./pkg/health/... ./pkg/ipvsadm/...

## generate: rebuild the BPF objects with Debian's clang 14 (bpf2go)
generate:
	@tools/deps.sh test
	cd pkg/dataplane/xdp && $(GO) generate ./...

## check-generate: fail if the committed BPF objects are stale
check-generate:
	tools/check-generate.sh

## man: rewrite docs/man (xlb.8, xlbadm.8, xlb.conf.5) from the programs' own help and keyword table (go test fails while they are stale)
.PHONY: man
man:
	$(GO) run ./tools/manpages -o docs/man

## readme: rewrite README.md's keepalived.conf coverage tables from the parser and the data planes' Caps (tools/kwtable; go test fails while they are stale)
.PHONY: readme
readme:
	$(GO) run ./tools/kwtable -w README.md

## lint: gofmt and go vet
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

## bench: the data plane's and the control plane's benchmarks (forwarding, role flips, listings, applying 10k services, xlb check of them; with XLB_KATRAN_OBJ=balancer.bpf.o the 1M-flows case against Katran), 3 rounds, ratios to a baseline of the same round; rewrites the table in docs/benchmarks.md (root). tools/bench-ab.sh REV compares with a revision
bench:
	@tools/deps.sh test
	set -o pipefail; $(GO) test -run '^$$' -bench 'BenchmarkDR|BenchmarkForwardRate' -benchtime 2000000x -count 3 ./pkg/dataplane/xdp/ | tee bench.out
	set -o pipefail; $(GO) test -run '^$$' -bench 'BenchmarkRoleFlip|BenchmarkIpvsadmList' -benchtime 20x -count 3 ./pkg/dataplane/xdp/ | tee -a bench.out
	set -o pipefail; $(GO) test -run '^$$' -bench 'BenchmarkApply' -benchtime 1x -count 3 ./pkg/dataplane/xdp/ | tee -a bench.out
	set -o pipefail; $(GO) test -run '^$$' -bench 'BenchmarkCheck10k' -benchtime 1x -count 3 ./cmd/xlb/ | tee -a bench.out
	@# Against Katran in the same run when its balancer object is given
	@# (pkg/dataplane/xdp/katran_bench_test.go says how to build one).
	set -o pipefail; if [ -n "$$XLB_KATRAN_OBJ" ]; then $(GO) test -run '^$$' -bench 'BenchmarkKatran1MFlows' -benchtime 2000000x -count 3 ./pkg/dataplane/xdp/ | tee -a bench.out; \
	else echo "make bench: XLB_KATRAN_OBJ not set, the 1M-flows case against Katran not run"; fi
	$(GO) run ./tools/benchtab -doc docs/benchmarks.md -cmd 'make bench' < bench.out

## chaos: faults against a running director (the xlb binary, under load), a table of what each did: docs/chaos.md (root)
chaos:
	@tools/deps.sh test
	$(GO) run ./tools/chaos -o docs/chaos.md

## fuzz: run each fuzz target for FUZZTIME (20s), the XDP data plane's FuzzXDPVerdicts for FUZZTIME_XDP (5m; root)
FUZZTIME ?= 20s
FUZZTIME_XDP ?= 5m
fuzz:
	@for p in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
	    t=$(FUZZTIME); [ "$$f" = FuzzXDPVerdicts ] && t=$(FUZZTIME_XDP); \
	    echo "fuzz $$p $$f ($$t)"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $$t $$p || exit 1; \
	  done; \
	done

## vmtest: the tests in QEMU on one pinned Debian kernel: KERNEL=6.1 (5.10 6.1 6.12 7.3) [PKGS=./pkg/probe/...] [TESTFLAGS=-test.run=XDP]
vmtest:
	$(GO) run ./vmtest run $(VMTEST_FLAGS) $(or $(KERNEL),6.1)

## vmtest-ci: what make test runs in a Debian 6.1 VM (a stock Debian 12 kernel, IPVS loaded), as two VMs at once (tools/vmtest-ci.sh): IPVS (data plane, fallback, behaviour suite), the ipvsadm goldens against the real ipvsadm and the kernel, keepalived interop, scripts, and XDP there (make vmtest KERNEL=6.1: the whole suite)
vmtest-ci:
	GO=$(GO) tools/vmtest-ci.sh

## vmtest-all: vmtest on every pinned kernel, the host's probe, and the kernel x feature matrix
vmtest-all:
	$(GO) run ./vmtest all $(VMTEST_FLAGS)

.PHONY: vmtest vmtest-all vmtest-ci
VMTEST_FLAGS = $(if $(PKGS),--pkgs '$(PKGS)') $(if $(TESTFLAGS),--testflags '$(TESTFLAGS)')

## clean: remove built binaries
clean:
	rm -rf bin
