# hfgate: `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/hfgate
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
ACTIONLINT := github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
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
# make wheel: the folder, and the platforms (GOOS/GOARCH) to build a binary and a wheel for; the
# py3-none-any wheel (no binary) is always built too. make release: its folder, which holds
# exactly what the release workflow (.github/workflows/release.yml) uploads.
DIST ?= dist
WHEEL_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
WHEEL_LICENSE ?= Apache-2.0
RELEASE_DIR ?= $(DIST)/release
# The wheel's version, and how make space's requirements.txt asks for hfgate.
PY_VERSION = $(shell $(PYTHON) python/build_wheel.py --pep440 '$(VERSION)')
HFGATE_REQUIREMENT ?= $(if $(VENDOR_BINARY),,hfgate==$(PY_VERSION))
# make space VENDOR_BINARY=1: carry bin/hfgate in the Space folder instead of installing the wheel.
VENDOR_BINARY ?=

.DEFAULT_GOAL := help

.PHONY: help build run deps test test-unit check lint gofmt fmt vet staticcheck bench bench-micro bench-build bench-profile clean release release-notes wheel binaries space test-faults fuzz check-platforms lint-workflows

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

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

test: deps ## the whole test suite: race-enabled unit and end-to-end tests (real uvicorn, Chromium, wheel), faults, soak, fuzz
	$(GO) test -race -count=1 ./...
	cd bench && $(GO) test -count=1 ./...
	$(MAKE) --no-print-directory test-faults fuzz

test-unit: ## the fast loop: unit tests with the race detector; -short skips the end-to-end ones (cached)
	$(GO) test -short -race $(TEST_FLAGS) ./...
	cd bench && $(GO) test -short $(TEST_FLAGS) ./...

check: lint ## gofmt, vet and staticcheck on both modules, then the unit tests, uncached (CI runs it)
	$(MAKE) --no-print-directory test-unit TEST_FLAGS=-count=1

# Reliability (docs/reliability.md): fault injection under load and the soak, then each fuzz
# target for FUZZTIME. Both are part of `make test`; together they take about 4.5 minutes.
HFGATE_SOAK ?= 2m
FUZZTIME ?= 10s

test-faults: ## kill -9 and SIGTERM under load, then a soak of HFGATE_SOAK (default 2m)
	HFGATE_FAULTS=1 HFGATE_SOAK=$(HFGATE_SOAK) $(GO) test -count=1 -v -timeout 15m \
		-run '^(TestFaultCrashUnderLoad|TestFaultSigtermUnderLoad|TestFaultRestartsUnseen|TestSoak)$$' ./e2e/

# The fuzz targets are whatever `go test -list '^Fuzz'` finds, package by package: a new
# FuzzXxx gets its FUZZTIME without being listed here.
fuzz: ## run every fuzz target (go test -list) for FUZZTIME (default 10s); a crash fails and leaves its input in testdata/fuzz
	@set -euo pipefail; \
	targets=$$($(GO) test -list '^Fuzz' ./... | awk '/^Fuzz/ { names = names " " $$1; next } \
		/^ok[ \t]/ { n = split(names, a, " "); for (i = 1; i <= n; i++) print $$2 ":" a[i]; names = "" }'); \
	[ -n "$$targets" ] || { echo "fuzz: go test -list found no fuzz target" >&2; exit 1; }; \
	echo "fuzz: $$(echo $$targets | wc -w) targets"; \
	for t in $$targets; do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

lint: gofmt vet staticcheck check-platforms lint-workflows ## gofmt, go vet and staticcheck on both modules (the gateway and bench/), the same for macOS, actionlint on the workflows

gofmt: ## fail when a file needs gofmt (make fmt formats them)
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed (make fmt):"; echo "$$out"; exit 1; fi

fmt: ## format the code
	gofmt -w .

vet: ## go vet, both modules
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

staticcheck: ## staticcheck with staticcheck.conf, both modules (fetched through the Go module proxy)
	$(GO) run $(STATICCHECK) ./...
	cd bench && $(GO) run $(STATICCHECK) ./...

# The macOS build: the wheels carry darwin binaries, so every package, tests included, must build,
# vet and pass staticcheck for GOOS=darwin too (what is Linux-only has a _darwin.go twin).
# staticcheck is installed for this machine into bin/ first: `go run` would build it for darwin.
check-platforms: ## GOOS=darwin, arm64 and amd64: go build, go vet and staticcheck of every package
	GOBIN=$(CURDIR)/bin $(GO) install $(STATICCHECK)
	for arch in arm64 amd64; do \
		echo "check-platforms: darwin/$$arch"; \
		export GOOS=darwin GOARCH=$$arch CGO_ENABLED=0; \
		$(GO) build ./... && $(GO) vet ./... && ./bin/staticcheck ./... || exit 1; \
	done

# actionlint also runs shellcheck on the workflows' run: scripts when shellcheck is installed
# (.ci/deps installs it).
lint-workflows: ## actionlint on .github/workflows (fetched through the Go module proxy)
	@command -v shellcheck >/dev/null || echo "lint-workflows: shellcheck is not installed; run: scripts are not checked (apt-get install shellcheck)" >&2
	$(GO) run $(ACTIONLINT)

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

binaries: # static binaries for WHEEL_PLATFORMS in DIST (hfgate-GOOS-GOARCH)
	mkdir -p $(DIST) && rm -f $(DIST)/hfgate-linux-* $(DIST)/hfgate-darwin-*
	for p in $(WHEEL_PLATFORMS); do \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -trimpath -ldflags "$(LDFLAGS)" \
			-o $(DIST)/hfgate-$${p%/*}-$${p#*/} . || exit 1; \
	done

wheel: binaries ## a wheel per WHEEL_PLATFORMS (Linux and macOS, amd64 and arm64) and the py3-none-any wheel, in ./dist
	rm -f $(DIST)/hfgate-*.whl
	for p in $(WHEEL_PLATFORMS); do \
		$(PYTHON) python/build_wheel.py --binary $(DIST)/hfgate-$${p%/*}-$${p#*/} --os $${p%/*} --arch $${p#*/} \
			--version '$(VERSION)' --license '$(WHEEL_LICENSE)' --out $(DIST) || exit 1; \
	done
	$(PYTHON) python/build_wheel.py --any --version '$(VERSION)' --license '$(WHEEL_LICENSE)' --out $(DIST)

release: ## every binary and wheel with SHA256SUMS in RELEASE_DIR (dist/release): what the release workflow uploads
	rm -rf $(RELEASE_DIR)
	$(MAKE) --no-print-directory wheel DIST=$(RELEASE_DIR) WHEEL_PLATFORMS='linux/amd64 linux/arm64 darwin/amd64 darwin/arm64'
	cd $(RELEASE_DIR) && sums=$$(sha256sum -- * 2>/dev/null || shasum -a 256 -- *) && \
		printf '%s\n' "$$sums" > SHA256SUMS && cat SHA256SUMS

# The CHANGELOG.md section of VERSION's release (its heading "## [X.Y.Z] - date" without the
# v): the release workflow's notes. No such section fails, so a tag cannot go out undescribed.
CHANGELOG ?= CHANGELOG.md
release-notes: ## print CHANGELOG's section for VERSION (a tag: make release-notes VERSION=v1.2.3)
	@v=$$($(PYTHON) python/build_wheel.py --pep440 '$(VERSION)') && \
	awk -v v="$$v" 'index($$0, "## [" v "]") == 1 { found = 1; next } /^## \[|^\[[^]]+\]: / { if (found) exit } found { print } \
		END { if (!found) { print "release-notes: $(CHANGELOG) has no \"## [" v "]\" section" > "/dev/stderr"; exit 1 } }' $(CHANGELOG)

# make space: one implementation, hfgate.space's `new` (python -m hfgate.space new), run from
# this checkout; `new` warns when the requirement is one no package index serves. VENDOR_BINARY=1 builds the linux/amd64 binary (what Spaces run) and carries it.
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
		args+=(--requirement "$$req"); \
	fi; \
	PYTHONPATH=python $(PYTHON) -m hfgate.space new "$${args[@]}"

clean: ## remove build output
	rm -rf bin dist
