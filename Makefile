# Tiyn — every target has a "## " line; `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN := bin/tiyn
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
PKGS := ./...
# Rapid checks per property in `make test` (modest, so CI stays in minutes)
# and in `make test-prop` (a long run).
RAPID_CHECKS ?= 2000
# make test-prop fails when any action of the state machine ran fewer times
# than this over the whole run: a silently skipped action cannot pass.
PROP_MIN_ACTIONS ?= 20
FUZZTIME ?= 30s
# golangci-lint, pinned; `make tools` installs it into bin/ from the Go
# module proxy when bin/ does not hold this version.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := bin/golangci-lint

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/tiyn (SQLite is the C library with cgo; CGO_ENABLED=0 builds the pure-Go one).
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./app/cmd/tiyn

.PHONY: run
run: build ## Serve on the embedded SQLite file ./tiyn.db (demo token and key printed at each start).
	./$(BIN) serve

.PHONY: test
test: ## Run every test with -race, then the store tests on pure-Go SQLite (PostgreSQL: TIYN_TEST_POSTGRES_URL, else Docker, else 127.0.0.1:5432).
	$(GO) test -race -count=1 -timeout 30m $(PKGS)
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 10m ./adapters/sqlstore/ ./tests/contract/

.PHONY: screenshots
screenshots: ## Refresh docs/screenshots (the README's) from the console's browser tests (needs chromium).
	TIYN_SCREENSHOTS=docs/screenshots $(GO) test -count=1 -timeout 10m -run 'Browser' ./tests/browser/

.PHONY: test-prop
test-prop: ## Long property run: the rapid state machine with RAPID_CHECKS checks; prints action counts, fails if one ran < PROP_MIN_ACTIONS.
	set -o pipefail; TIYN_PROP_REPORT=1 TIYN_PROP_MIN_ACTIONS=$(PROP_MIN_ACTIONS) $(GO) test -count=1 -timeout 60m -run 'Property|Machine' -v ./tests/property/ -rapid.checks=$(RAPID_CHECKS) | grep -Ev '^=== (RUN|PAUSE|CONT)'

.PHONY: tools
tools: ## Install the pinned golangci-lint (GOLANGCI_LINT_VERSION) into bin/ unless it is there.
	@if $(GO) version -m $(GOLANGCI_LINT) 2>/dev/null | grep -Eq '^[[:space:]]+mod[[:space:]]+github.com/golangci/golangci-lint/v2[[:space:]]+$(GOLANGCI_LINT_VERSION)[[:space:]]'; then :; else \
		echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) into bin/"; \
		GOBIN=$(CURDIR)/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); \
	fi

.PHONY: lint
lint: tools ## go vet, gofmt, go.mod/go.sum tidy, no build output tracked, golangci-lint (.golangci.yml: errcheck, staticcheck, the layer rule, …) and its self-test.
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run make tidy (and keep unrelated versions pinned)"; exit 1; }
	@out=$$(git ls-files -ci --exclude-standard); if [ -n "$$out" ]; then echo "tracked files that .gitignore ignores (build output?): git rm --cached them:"; echo "$$out"; exit 1; fi
	$(GOLANGCI_LINT) run $(PKGS)
	CGO_ENABLED=0 $(GOLANGCI_LINT) run --enable-only depguard $(PKGS)
	TIYN_GOLANGCI_LINT=$(CURDIR)/$(GOLANGCI_LINT) $(GO) test -count=1 ./tests/arch/

.PHONY: fmt
fmt: ## gofmt every Go file.
	gofmt -w $$(git ls-files '*.go')

.PHONY: tidy
tidy: ## go mod tidy.
	$(GO) mod tidy

.PHONY: demo
demo: build ## Serve on a temporary SQLite file and run a simulation of a few thousand payments.
	./scripts/demo.sh

.PHONY: bench
bench: build ## The benchmark table: Tiyn vs pgbench baseline on PostgreSQL and SQLite (a few minutes).
	./bench/run.sh

.PHONY: microbench
microbench: ## Go micro-benchmarks (signer, amount parsing, callback decoding, settle per store).
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./adapters/... ./domain/... ./tools/... ./tests/bench/...

.PHONY: drills
drills: build ## Reliability drills: crashes, database outages, shutdown, hostile input, slow clients.
	TIYN_DRILLS=full $(GO) test -count=1 -timeout 30m -v -run 'Drill' ./tests/drills/

.PHONY: soak
soak: build ## Bounded soak against PostgreSQL (SOAK_DURATION, default 5m): RSS, goroutines, latency over time.
	SOAK_DURATION=$${SOAK_DURATION:-5m} ./scripts/soak.sh

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each.
	./scripts/fuzz.sh $(FUZZTIME)

.PHONY: cover
cover: ## Test coverage summary.
	@mkdir -p .tmp
	$(GO) test -count=1 -coverprofile=.tmp/cover.out $(PKGS) >/dev/null && $(GO) tool cover -func=.tmp/cover.out | tail -1
