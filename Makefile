# Copyright The modelarts_exporter Authors
# SPDX-License-Identifier: Apache-2.0

GO        ?= go
PROMU     ?= promu
PROMTOOL  ?= promtool
BINARIES  := modelarts_exporter modelarts-simulator

# The same version information promu stamps into release builds (.promu.yml).
VERSION   := $(shell cat VERSION)
REVISION  := $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
BRANCH    := $(shell git symbolic-ref --short -q HEAD 2>/dev/null || echo unknown)
BUILDUSER := $(shell id -un 2>/dev/null || echo unknown)@$(shell hostname 2>/dev/null || echo unknown)
BUILDDATE := $(shell date -u +%Y%m%d-%H:%M:%S)
VPKG      := github.com/prometheus/common/version
LDFLAGS   := -X $(VPKG).Version=$(VERSION) -X $(VPKG).Revision=$(REVISION) -X $(VPKG).Branch=$(BRANCH) \
             -X $(VPKG).BuildUser=$(BUILDUSER) -X $(VPKG).BuildDate=$(BUILDDATE)

.PHONY: all build test vet lint demo e2e bench fuzz load tarball clean tools mixin chart docker docker-release

all: lint test build

## build: the exporter and the simulator, with promu when it is installed, else go build.
build:
ifneq ($(shell command -v $(PROMU) 2>/dev/null),)
	$(PROMU) build --prefix .
else
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o modelarts_exporter .
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o modelarts-simulator ./cmd/modelarts-simulator
endif

vet:
	$(GO) vet -tags e2e,load ./...

## test: vet, the race-enabled test suite, and promtool check metrics on real output (inside the suite).
## The suites that talk to the simulator run twice: an untyped ListImage lists BUILD_IN images only
## (as Huawei documents it), then every image (the other reading); the second run checks behaviour
## under that reading, the first one already ran the same code under the race detector.
test: vet
	$(GO) test -race -count=1 ./...
	MODELARTS_SIMULATOR_UNTYPED=ALL $(GO) test -count=1 . ./collector/ ./modelarts/...

## lint: gofmt, go vet and golangci-lint (make tools) with .golangci.yml: zero findings.
lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@command -v golangci-lint >/dev/null 2>&1 || { echo "golangci-lint is not on PATH: run make tools and add \$$(go env GOPATH)/bin to PATH"; exit 1; }
	golangci-lint run --build-tags e2e,load ./...

## tools: golangci-lint, helm and jsonnet at pinned versions, built from the Go module proxy into $(go env GOPATH)/bin.
## make test uses them when they are on PATH (MODELARTS_REQUIRE_TOOLS=1: it fails without them).
HELM_VERSION    := v3.22.0
JSONNET_VERSION := v0.22.0
GOLANGCI_LINT_VERSION := v2.15.0
tools:
	$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	$(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	$(GO) install github.com/google/go-jsonnet/cmd/jsonnet@$(JSONNET_VERSION)

## mixin: regenerate the alerts, the dashboard and the PrometheusRules from mixin/ (needs jsonnet).
mixin:
	./scripts/mixin.sh

## chart: helm lint --strict and helm template of charts/modelarts-exporter, with the rendered objects checked.
chart:
	MODELARTS_REQUIRE_TOOLS=1 $(GO) test -count=1 ./charts/

## demo: the simulator with sample images and the exporter on loopback; no cloud account needed.
demo: build
	./scripts/demo.sh

## e2e: deploy/ checked by promtool, --config.check, go test ./deploy, systemd-analyze and kubectl, then the
## real stack on loopback: simulator, exporter, Debian's prometheus, prometheus-alertmanager and chromium
## (Go tests in e2e/ behind the build tag e2e; they fail when one of those Debian packages is missing).
e2e: build
	$(GO) test -tags e2e -count=1 -v -timeout 5m ./e2e/

## bench: scrape time, API calls, allocations and render cost at 10, 1,000 and 10,000 images.
bench:
	./scripts/bench.sh

## fuzz: every fuzz target for a bounded time (FUZZTIME each, default 30s).
fuzz:
	./scripts/fuzz.sh

## load: many concurrent scrapers against the simulator with faults switched on and off (e2e/load_test.go,
## build tag load); LOAD_DURATION (default 60s), LOAD_SCRAPERS (20) and LOAD_IMAGES (50) size it.
load: build
	$(GO) test -tags load -count=1 -v -timeout 30m ./e2e/

## docker: the image from source (Dockerfile, multi-stage); needs only Docker.
DOCKER_IMAGE ?= modelarts-exporter
docker:
	docker build --build-arg REVISION=$(REVISION) --build-arg BRANCH=$(BRANCH) -t $(DOCKER_IMAGE):v$(VERSION) .

## docker-release: the image from promu's binaries (Dockerfile.release), after promu crossbuild.
docker-release:
	docker build -f Dockerfile.release --build-arg OS=linux --build-arg ARCH=amd64 -t $(DOCKER_IMAGE):v$(VERSION) .

tarball:
	$(PROMU) tarball --prefix .

clean:
	rm -f $(BINARIES)
	rm -rf .build .tarballs .e2e .bench
