# hfgate: `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/hfgate
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Version stamp for `hfgate --version` (see main.go): `git describe --tags --dirty`, and before
# the first tag the same form counted from the first commit (v0.0.0-N-gCOMMIT), so that the
# wheel's PEP 440 version (python/build_wheel.py --pep440) can always be derived from it.
VERSION ?= $(shell git describe --tags --dirty --match 'v[0-9]*' 2>/dev/null || \
	{ n=$$(git rev-list --count HEAD) && git describe --always --dirty | sed "s/^/v0.0.0-$$n-g/"; } 2>/dev/null || \
	echo devel)
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
# make space: the backend folder, its ASGI app (module:attribute) and the output folder.
BACKEND ?= examples/chatbot
APP ?= app:app
OUT ?= dist/space
# The interpreter for the wheel build and make space (Debian's, with python3-wheel), not a
# pyenv python3 that may come first on PATH.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
# make wheel: the folder and the architectures (GOARCH) to build wheels for.
DIST ?= dist
WHEEL_ARCHES ?= amd64 arm64
WHEEL_LICENSE ?= UNLICENSED
# The wheel's version, and how make space's requirements.txt asks for hfgate.
PY_VERSION = $(shell $(PYTHON) python/build_wheel.py --pep440 '$(VERSION)')
HFGATE_REQUIREMENT ?= $(if $(VENDOR_BINARY),,hfgate==$(PY_VERSION))
# make space VENDOR_BINARY=1: carry bin/hfgate in the Space folder instead of installing the wheel.
VENDOR_BINARY ?=

.DEFAULT_GOAL := help

.PHONY: help build run deps test check fmt vet staticcheck bench bench-micro bench-build bench-profile clean release wheel binaries space test-faults fuzz

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build ./bin/hfgate
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .

run: build ## run hfgate on :7860 supervising the example FastAPI chatbot
	@PY=$$(sh examples/chatbot/deps.sh) && \
	export UPSTREAM_URL=http://127.0.0.1:8000 UPSTREAM_DIR=examples/chatbot \
		UPSTREAM_CMD="$$PY -m uvicorn app:app --host 127.0.0.1 --port 8000 --proxy-headers --forwarded-allow-ips 127.0.0.1" \
		CORS_ALLOW_ORIGINS="$${CORS_ALLOW_ORIGINS:-*}" && \
	exec ./$(BIN)

deps: ## install test dependencies (Debian packages, playwright-core from npm)
	bash .ci/deps

test: deps ## the whole test suite: formatting, vet, race-enabled unit, end-to-end and browser tests
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./... && $(GO) test -count=1 ./...
	$(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory test-faults fuzz

# Reliability (docs/reliability.md): fault injection under load and the soak, then each fuzz
# target for FUZZTIME. Both are part of `make test`; together they take about 4.5 minutes.
HFGATE_SOAK ?= 2m
FUZZTIME ?= 10s
FUZZ_TARGETS := config:FuzzLoad middleware:FuzzCORSOrigin middleware:FuzzRequestID \
	gateway:FuzzLogSanitise gateway/supervise:FuzzMaskQuery gateway:FuzzForwardedHeaders

test-faults: ## kill -9 and SIGTERM under load, then a soak of HFGATE_SOAK (default 2m)
	HFGATE_FAULTS=1 HFGATE_SOAK=$(HFGATE_SOAK) $(GO) test -count=1 -v -timeout 15m \
		-run '^(TestFaultCrashUnderLoad|TestFaultSigtermUnderLoad|TestFaultRestartsUnseen|TestSoak)$$' ./e2e/

fuzz: ## run each fuzz target for FUZZTIME (default 10s); a crash fails and leaves its input in testdata/fuzz
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; \
	done

check: test staticcheck ## test plus staticcheck

fmt: ## format the code
	gofmt -w .

vet: ## go vet
	$(GO) vet ./...

staticcheck: ## staticcheck (fetched through the Go module proxy)
	$(GO) run $(STATICCHECK) ./...

# The benchmark harness is its own Go module (bench/go.mod), so gonum/plot and benchstat stay
# out of the gateway's go.mod. BENCH_FLAGS adds harness flags (see bin/hfbench -h).
BENCH_FLAGS ?=
MICRO_COUNT ?= 8

bench-build: ## build the benchmark harness (bin/hfbench) and vet it
	cd bench && $(GO) vet ./... && $(GO) build -o ../bin/hfbench .

bench: build bench-build ## side-by-side benchmark vs Caddy, nginx, HAProxy, saturated and at 200/1,000 req/s (~8 min); writes docs/performance.md
	bash bench/deps.sh
	cd bench && ../bin/hfbench -hfgate ../bin/hfgate -out ../docs/performance.md -chart ../docs/performance.png $(BENCH_FLAGS)

# make bench-profile PROFILE_FLAGS="-target caddy -upstream go": perf profile of one gateway under
# a paced load (hfgate built with its symbols; no profiling endpoint in the gateway).
PROFILE_FLAGS ?= -target hfgate -upstream uvicorn -rate 1000 -duration 30s
PROFILE_OUT ?= bin/profile
bench-profile: bench-build ## perf profile of hfgate at a fixed rate (PROFILE_FLAGS); perf.data, report.txt, areas.md in PROFILE_OUT
	BENCH_PERF=1 bash bench/deps.sh
	cd bench && ../bin/hfbench profile -out ../$(PROFILE_OUT) $(PROFILE_FLAGS)

# make bench-overload OVERLOAD_FLAGS="-duration 10s": one uvicorn worker with a CPU-bound and an
# I/O-bound endpoint, open loop at 1x-10x its measured capacity, through uvicorn alone, its
# --limit-concurrency, HAProxy, nginx and hfgate (see bin/hfbench overload -h).
.PHONY: bench-overload
OVERLOAD_FLAGS ?=
bench-overload: build bench-build ## overload side by side vs uvicorn, HAProxy, nginx (~25 min); writes docs/overload-bench.md
	BENCH_OVERLOAD=1 bash bench/deps.sh
	cd bench && ../bin/hfbench overload -hfgate ../bin/hfgate -out ../docs/overload-bench.md $(OVERLOAD_FLAGS)

bench-micro: ## hot-path Go microbenchmarks with -benchmem; output in bin/bench-micro.txt, for benchstat
	@mkdir -p bin
	$(GO) test -run '^$$' -bench . -benchmem -count $(MICRO_COUNT) ./gateway/ ./middleware/ | tee bin/bench-micro.txt
	@echo "compare two runs: cd bench && $(GO) tool benchstat ../OLD.txt ../bin/bench-micro.txt"

binaries: # static linux binaries for WHEEL_ARCHES in DIST (hfgate-linux-GOARCH)
	mkdir -p $(DIST) && rm -f $(DIST)/hfgate-linux-*
	for arch in $(WHEEL_ARCHES); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" \
			-o $(DIST)/hfgate-linux-$$arch . || exit 1; \
	done

wheel: binaries ## platform wheels in ./dist: hfgate-VERSION-py3-none-manylinux_2_17_ARCH.musllinux_1_2_ARCH.whl
	rm -f $(DIST)/hfgate-*.whl
	for arch in $(WHEEL_ARCHES); do \
		$(PYTHON) python/build_wheel.py --binary $(DIST)/hfgate-linux-$$arch --arch $$arch \
			--version '$(VERSION)' --license '$(WHEEL_LICENSE)' --out $(DIST) || exit 1; \
	done

release: wheel ## static linux/amd64 and linux/arm64 binaries and wheels with SHA256SUMS in ./dist
	cd $(DIST) && rm -f SHA256SUMS && sha256sum hfgate-linux-* hfgate-*.whl > SHA256SUMS && cat SHA256SUMS

# make space: one implementation, hfgate.space's `new` (python -m hfgate.space new), run from
# this checkout. VENDOR_BINARY=1 builds the linux/amd64 binary (what Spaces run) and carries it.
space: ## a ready-to-push Space folder: make space BACKEND=dir APP=module:attr OUT=dir [VENDOR_BINARY=1]
	@set -e; args=(--backend "$(BACKEND)" --app "$(APP)" --out "$(OUT)"); \
	[ -z "$(TITLE)" ] || args+=(--title "$(TITLE)"); \
	[ -z "$(PYTHON_VERSION)" ] || args+=(--python-version "$(PYTHON_VERSION)"); \
	[ -z "$(SDK_VERSION)" ] || args+=(--sdk-version "$(SDK_VERSION)"); \
	[ -z "$(STARTUP_TIMEOUT)" ] || args+=(--startup-timeout "$(STARTUP_TIMEOUT)"); \
	if [ -n "$(VENDOR_BINARY)" ]; then \
		tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT; \
		echo "make space: building bin/hfgate (linux/amd64, static)" >&2; \
		CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o "$$tmp/hfgate" .; \
		args+=(--vendor-binary "$$tmp/hfgate"); \
	else \
		req='$(HFGATE_REQUIREMENT)'; [ -n "$$req" ] && [ "$$req" != "hfgate==" ] || exit 1; \
		case "$$req" in *.dev*) echo "make space: $$req is not a release: publish its wheel, or set HFGATE_REQUIREMENT (docs/deploy-hf-spaces.md)" >&2;; esac; \
		args+=(--requirement "$$req"); \
	fi; \
	PYTHONPATH=python $(PYTHON) -m hfgate.space new "$${args[@]}"

clean: ## remove build output
	rm -rf bin dist
