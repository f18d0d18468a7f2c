# statepack — build, test, demo and benchmark entry points.
# Tools the project needs (staticcheck, a pinned MinIO) are installed with
# `go install` into .tools/ (git-ignored) on first use and cached there.

GO          ?= go
TOOLS       := $(CURDIR)/.tools
BIN         := $(CURDIR)/bin
STATICCHECK := $(TOOLS)/bin/staticcheck
MINIO       := $(TOOLS)/bin/minio
MINIO_MOD   := github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
STATICCHECK_MOD := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 30s
BENCH_MB    ?= 1024
TORTURE_N   ?= 200
# Packages with goroutines of their own, tested under -race by `make test`.
# Not chunker, archive/format or archive/statcache: they run none (save's
# goroutines that share them are archive's and saver's), -race makes the
# chunker's tests ten times slower, and it adds allocations of its own to
# the format's allocation bounds.
RACE_PKGS   ?= ./archive ./archive/lookup ./archive/scan ./archive/datadir ./archive/saver \
               ./archive/restorer ./archive/maintain ./archive/transfer ./archive/seal ./remote/... \
               ./cmd/statepack ./internal/output ./internal/faultnet ./internal/benchutil \
               ./internal/miniotest ./internal/localstack
# The archive tests that skip under -race (skipUnderRace), for the plain pass.
RACE_SKIPPED := ^Test(ManySmallFiles|SparseHugeFile)$$

export GOFLAGS := -buildvcs=false

# What `statepack version` and the image's tag and labels show.
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE_ARCH  ?= $(shell $(GO) env GOARCH)

.PHONY: all build release image test test-short lint demo bench gobench fuzz torture tools clean

all: build

# bin/statepack is the product; bin/statepack-datagen (the demo's and the
# benchmarks' data generator) lives under internal/cmd with the benchmark
# driver, so that `go install ./cmd/...` installs the product alone.
build:
	$(GO) build -o $(BIN)/statepack ./cmd/statepack
	$(GO) build -o $(BIN)/statepack-datagen ./internal/cmd/statepack-datagen

# Release archives for the GitHub Action and the README's install steps:
# dist/statepack_$(VERSION)_<os>_<arch>.tar.gz for linux on amd64 and arm64, and dist/statepack_$(VERSION)_checksums.txt (see
# internal/cmd/release). RELEASE_PLATFORMS="linux/amd64 ..." builds fewer.
RELEASE_PLATFORMS ?=
RELEASE_VERSION_OK = $(shell printf '%s\n' '$(VERSION)' | grep -Ex 'v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)')

release:
	$(if $(RELEASE_VERSION_OK),,$(error make release needs VERSION=vX.Y.Z, e.g. make release VERSION=v1.2.3 (got "$(VERSION)")))
	$(GO) run ./internal/cmd/release -version $(VERSION) -dist dist $(RELEASE_PLATFORMS)

# The container image, built without a Docker daemon by internal/cmd/image
# (go-containerregistry): the static linux/$(IMAGE_ARCH) binary (CGO_ENABLED=0,
# -trimpath, stamped with VERSION and COMMIT), this machine's CA certificates,
# /tmp and /data, nothing else. It runs as uid 65532 by default, and as any
# other: the store is /data/store (STATEPACK_STORE), HOME is /data; DATA_DIR
# and the remote are the user's. Output: dist/statepack-image.tar, a
# docker-style tarball (not an OCI layout) tagged statepack:VERSION and
# statepack:latest, for `docker load -i` or `podman load -i`; `skopeo copy
# docker-archive:dist/statepack-image.tar docker://REGISTRY/statepack:TAG`
# (or `crane push`) sends it to a registry. Same commit, same image digest
# (SOURCE_DATE_EPOCH is the commit's time).
image:
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 0) \
	  $(GO) run ./internal/cmd/image -go $(GO) -version $(VERSION) -commit $(COMMIT) \
	    -arch $(IMAGE_ARCH) -o dist/statepack-image.tar

$(STATICCHECK):
	GOBIN=$(TOOLS)/bin $(GO) install $(STATICCHECK_MOD)

# MinIO takes a few minutes to build the first time; it is cached afterwards.
$(MINIO):
	@echo "installing pinned MinIO into $(TOOLS)/bin (first time only, a few minutes)"
	cd / && GOFLAGS= GOBIN=$(TOOLS)/bin $(GO) install $(MINIO_MOD)

tools: $(STATICCHECK) $(MINIO)

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# The whole suite: unit, integration (real binary), S3 against a real MinIO
# started on a free loopback port, and the fuzz targets' seed corpora.
# Two passes at once, both of which must pass:
#  - race: RACE_PKGS, the packages with goroutines of their own, under the
#    race detector instead of plainly (the same tests); the binary their
#    CLI tests start is built with -race too (internal/testbin). The few
#    tests whose size, not concurrency, makes them minutes long under
#    -race skip there (archive's skipUnderRace) ...
#  - plain: ... and run here, with every other package (the integration
#    suites internal/attack and internal/torture, whose memory bounds a
#    race binary would break).
# Without MinIO the S3 tests skip, or fail under CI=true.
test: lint $(MINIO)
	@race=$$($(GO) list $(RACE_PKGS)) && plain=$$($(GO) list ./... | grep -vxF "$$race") || exit 1; \
	  { STATEPACK_MINIO=$(MINIO) $(GO) test -count=1 -timeout 20m $$plain; p=$$?; \
	    $(GO) test -count=1 -timeout 20m -run '$(RACE_SKIPPED)' ./archive && exit $$p; } & pid=$$!; \
	  STATEPACK_MINIO=$(MINIO) $(GO) test -race -count=1 -timeout 20m $$race; r=$$?; \
	  wait $$pid && exit $$r

# Everything but the S3 tests, for a quick loop while editing.
test-short:
	$(GO) test -short -count=1 ./...

demo: build
	@BIN=$(BIN) bash ./testdata/demo.sh

bench: build $(MINIO)
	STATEPACK_MINIO=$(MINIO) BENCH_MB=$(BENCH_MB) $(GO) run ./internal/cmd/statepack-bench

gobench:
	$(GO) test -run '^$$' -bench . -benchmem ./chunker ./archive ./archive/seal

fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

torture: build $(MINIO)
	@mkdir -p .bench
	STATEPACK_MINIO=$(MINIO) STATEPACK_TORTURE=$(TORTURE_N) STATEPACK_TORTURE_REPORT=$(CURDIR)/.bench/torture.json \
	  $(GO) test -v -count=1 -timeout 3h -run Torture ./...

clean:
	rm -rf $(BIN) .demo .bench dist
