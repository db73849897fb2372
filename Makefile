# hfgate: `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/hfgate
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.DEFAULT_GOAL := help

.PHONY: help build run deps test check fmt vet staticcheck bench clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build ./bin/hfgate
	$(GO) build -trimpath -ldflags "-s -w" -o $(BIN) .

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
	$(GO) test -race -count=1 ./...

check: test staticcheck ## test plus staticcheck

fmt: ## format the code
	gofmt -w .

vet: ## go vet
	$(GO) vet ./...

staticcheck: ## staticcheck (fetched through the Go module proxy)
	$(GO) run $(STATICCHECK) ./...

bench: build ## benchmarks; see docs/performance.md
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean: ## remove build output
	rm -rf bin
