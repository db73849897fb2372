# hfgate: `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/hfgate
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Version stamp for `hfgate --version` (see main.go).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
# make space: the backend folder, its ASGI app (module:attribute) and the output folder.
BACKEND ?= examples/chatbot
APP ?= app:app
OUT ?= dist/space

.DEFAULT_GOAL := help

.PHONY: help build run deps test check fmt vet staticcheck bench bench-micro bench-build clean release space test-faults fuzz

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
		-run '^(TestFaultCrashUnderLoad|TestFaultSigtermUnderLoad|TestSoak)$$' ./e2e/

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

bench: build bench-build ## side-by-side benchmark vs Caddy, nginx, HAProxy (~4 min); writes docs/performance.md
	bash bench/deps.sh
	cd bench && ../bin/hfbench -hfgate ../bin/hfgate -out ../docs/performance.md -chart ../docs/performance.png $(BENCH_FLAGS)

bench-micro: ## hot-path Go microbenchmarks with -benchmem; output in bin/bench-micro.txt, for benchstat
	@mkdir -p bin
	$(GO) test -run '^$$' -bench . -benchmem -count $(MICRO_COUNT) ./gateway/ ./middleware/ | tee bin/bench-micro.txt
	@echo "compare two runs: cd bench && $(GO) tool benchstat ../OLD.txt ../bin/bench-micro.txt"

release: ## static linux/amd64 and linux/arm64 binaries with SHA256SUMS in ./dist
	mkdir -p dist && rm -f dist/hfgate-linux-* dist/SHA256SUMS
	for arch in amd64 arm64; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" \
			-o dist/hfgate-linux-$$arch . || exit 1; \
	done
	cd dist && sha256sum hfgate-linux-* > SHA256SUMS && cat SHA256SUMS

space: ## a ready-to-push Space folder: make space BACKEND=dir APP=module:attr OUT=dir
	GO="$(GO)" LDFLAGS="$(LDFLAGS)" bash examples/space/assemble.sh "$(BACKEND)" "$(APP)" "$(OUT)"

clean: ## remove build output
	rm -rf bin dist
