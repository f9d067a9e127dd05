# Meridian's build. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
MODULE := github.com/meridiandb/meridian

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X $(MODULE)/internal/buildinfo.Version=$(VERSION)
# Stamp the commit into the binary when building from a git checkout (some
# environments set GOFLAGS=-buildvcs=false).
BUILDVCS := $(if $(wildcard .git),-buildvcs=true,)

# Packages whose tests run without the race detector: pure, single-threaded
# CPU work where -race only adds minutes. Everything else runs with -race.
NORACE_PKGS := $(MODULE)/keys $(MODULE)/tests/jepsen/check
TEST_TIMEOUT ?= 12m
TESTFLAGS ?=

BENCH ?= .
BENCHCOUNT ?= 1
BENCHTIME ?= 1s
FUZZTIME ?= 30s

.PHONY: help build test testrace bench bench-etcd fuzz lint proto demo clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

build: ## bin/meridian, bin/meridian-testhooks and bin/meridian-jepsen, statically linked
	CGO_ENABLED=0 $(GO) build $(BUILDVCS) -trimpath -ldflags '$(LDFLAGS)' -o bin/meridian ./cmd/meridian
	CGO_ENABLED=0 $(GO) build $(BUILDVCS) -trimpath -tags testhooks -ldflags '$(LDFLAGS)' -o bin/meridian-testhooks ./cmd/meridian
	CGO_ENABLED=0 $(GO) build $(BUILDVCS) -trimpath -ldflags '$(LDFLAGS)' -o bin/meridian-jepsen ./cmd/meridian-jepsen

test: ## what CI runs: vet, then every test (race detector on concurrent packages)
	$(GO) vet ./...
	$(GO) test -race -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $$($(GO) list ./... | grep -v -x -F $(patsubst %,-e %,$(NORACE_PKGS)))
	$(GO) test -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $(NORACE_PKGS)
	$(GO) test -race -tags testhooks $(TESTFLAGS) ./cmd/meridian

testrace: ## every test under the race detector
	$(GO) test -race -timeout 20m $(TESTFLAGS) ./...

bench: ## benchmarks (BENCH=regexp BENCHCOUNT=10 for benchstat)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(BENCHCOUNT) -benchtime $(BENCHTIME) ./...

# etcd's benchmark lives in a module of its own (bench/etcd), so the
# product never depends on etcd's server. The runs alternate, so the two
# are compared under the same load on the machine.
bench-etcd: ## etcd v3.7 beside raftgroup's BenchmarkPropose, alternating (BENCHCOUNT rounds)
	@set -o pipefail; for i in $$(seq $(BENCHCOUNT)); do \
	  (cd bench/etcd && $(GO) test -run '^$$' -bench . -benchtime 30000x) | grep '^Benchmark' || exit 1; \
	  $(GO) test -run '^$$' -bench BenchmarkPropose -benchtime 30000x ./raftgroup | grep '^Benchmark' || exit 1; \
	done

fuzz: ## every fuzz target for FUZZTIME each
	@set -e; for p in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz' || true); do \
	    echo "== fuzz $$p $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$p; \
	  done; \
	done

lint: ## gofmt, go vet, staticcheck (pinned in go.mod)
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

proto: ## regenerate the committed protobuf code under api/
	@command -v protoc >/dev/null || { echo "installing protoc (Debian protobuf-compiler)"; apt-get install -y -qq protobuf-compiler >/dev/null; }
	$(GO) build -o bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	$(GO) build -o bin/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc
	$(GO) mod download go.etcd.io/raft/v3
	@protos="$$(find api -name '*.proto' | sort)"; \
	if [ -z "$$protos" ]; then echo "no .proto files under api/"; exit 0; fi; \
	protoc -I . -I /usr/include -I "$$($(GO) list -m -f '{{.Dir}}' go.etcd.io/raft/v3)" \
	  --plugin=protoc-gen-go=bin/protoc-gen-go --plugin=protoc-gen-go-grpc=bin/protoc-gen-go-grpc \
	  --go_out=. --go_opt=module=$(MODULE) \
	  --go-grpc_out=. --go-grpc_opt=module=$(MODULE) \
	  $$protos

.PHONY: docker
docker: build ## the container image meridian:dev (FROM scratch, bin/meridian only); deploy/ runs a cluster of it
	docker build -t meridian:dev .

demo: build ## start a 3-node cluster in one process and say how to connect (Ctrl-C stops it)
	bin/meridian demo --nodes 3

clean: ## remove build output
	rm -rf bin
