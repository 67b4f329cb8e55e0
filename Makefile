# wasmixer: the project's verbs. CI calls these (via .ci/run), not raw cargo.
# `make` alone lists them.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

CARGO       ?= cargo
WASM_TARGET := wasm32-wasip1
TARGET_DIR  := $(or $(CARGO_TARGET_DIR),target)
DIST        := dist

# Every filter crate: filters/<dir>/Cargo.toml. Its package name is the manifest's first
# `name = "..."` (the [package] table comes first); its wasm is <package with _>.wasm.
FILTER_DIRS := $(sort $(patsubst filters/%/Cargo.toml,%,$(wildcard filters/*/Cargo.toml)))
pkg_of       = $(shell sed -n 's/^name *= *"\(.*\)"/\1/p' filters/$(1)/Cargo.toml | head -n1)
FILTER_PKGS := $(foreach d,$(FILTER_DIRS),$(call pkg_of,$(d)))
# Filters that embed the others as libraries. Their components must be built without the
# `standalone` feature (which exports each filter's own entry point), and cargo unifies features
# within one invocation, so these get a cargo invocation of their own.
COMBINED_DIRS     := mixer deny-request-only
STANDALONE_PKGS   := $(foreach d,$(filter-out $(COMBINED_DIRS),$(FILTER_DIRS)),$(call pkg_of,$(d)))
COMBINED_PKGS     := $(foreach d,$(filter $(COMBINED_DIRS),$(FILTER_DIRS)),$(call pkg_of,$(d)))

# rustc's wasm32 output uses bulk memory (memory.copy/fill) and sign-extension ops, which
# wasm-opt rejects unless enabled; float-to-int saturation and mutable globals are enabled by
# rustc too. All are supported by Envoy's V8. (Checked with binaryen 108 and rustc 1.95.)
#
# --one-caller-inline-max-function-size: binaryen otherwise inlines every function that has one
# caller, whatever its size, and the configure-time code (config parsing, plan compilation) ends
# up as one huge function. Envoy's V8 compiles every function with TurboFan when the module
# loads; the memory that takes grows with the largest functions and tcmalloc keeps it after, so
# that one function cost each Envoy megabytes of RSS (bench/README.md, memory). The engine crate marks the same functions
# `#[inline(never)]` so that LLVM does not merge them first.
WASM_OPT       ?= wasm-opt
WASM_OPT_FLAGS ?= -O3 --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
                  --enable-mutable-globals --one-caller-inline-max-function-size=500

.PHONY: help setup wasm size test test-native test-wasm32 test-integration lint clean run bench bench-paired bench-instructions bench-expr bench-validate bench-request-paths profile-request-paths profile-instructions

help: ## list the verbs
	@echo "wasmixer make verbs:"
	@awk -F ':.*## ' '/^[a-z0-9-]+:.*## /{printf "  %-17s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "filters: $(FILTER_DIRS)"

wasm: ## build every filters/* crate for wasm32-wasip1 into dist/<filter>.wasm
	@echo "==> cargo build --release --target $(WASM_TARGET): $(STANDALONE_PKGS)"
	$(CARGO) build --release --target $(WASM_TARGET) $(addprefix -p ,$(STANDALONE_PKGS))
	@echo "==> cargo build --release --target $(WASM_TARGET): $(COMBINED_PKGS)"
	$(CARGO) build --release --target $(WASM_TARGET) $(addprefix -p ,$(COMBINED_PKGS))
	@mkdir -p $(DIST)
	@if command -v $(WASM_OPT) >/dev/null 2>&1; then \
	  echo "==> $(WASM_OPT) $(WASM_OPT_FLAGS); then only the exports of filters/<filter>/wasm-exports.txt (filters/prune-exports.sh)"; \
	else \
	  echo "==> $(WASM_OPT) not on PATH: copying unoptimised modules"; \
	fi
	@set -e; for d in $(FILTER_DIRS); do \
	  pkg=$$(sed -n 's/^name *= *"\(.*\)"/\1/p' filters/$$d/Cargo.toml | head -n1); \
	  src=$(TARGET_DIR)/$(WASM_TARGET)/release/$${pkg//-/_}.wasm; \
	  if [ ! -f "$$src" ]; then echo "error: $$src not built (is $$pkg a cdylib?)" >&2; exit 1; fi; \
	  if command -v $(WASM_OPT) >/dev/null 2>&1; then \
	    $(WASM_OPT) $(WASM_OPT_FLAGS) "$$src" -o $(DIST)/$$d.wasm.tmp; \
	  else \
	    cp "$$src" $(DIST)/$$d.wasm.tmp; \
	  fi; \
	  if [ -f filters/$$d/wasm-exports.txt ] && command -v wasm-metadce >/dev/null 2>&1; then \
	    bash filters/prune-exports.sh $(DIST)/$$d.wasm.tmp filters/$$d/wasm-exports.txt $(DIST)/$$d.wasm.pruned; \
	    mv $(DIST)/$$d.wasm.pruned $(DIST)/$$d.wasm.tmp; \
	  fi; \
	  mv $(DIST)/$$d.wasm.tmp $(DIST)/$$d.wasm; \
	done
	@$(MAKE) size

size: ## print the sizes of dist/*.wasm
	@if ls $(DIST)/*.wasm >/dev/null 2>&1; then \
	  echo "==> filter sizes (bytes, gzip -9 bytes)"; \
	  for f in $(DIST)/*.wasm; do \
	    printf '  %-24s %9d %9d\n' "$$f" "$$(stat -c %s "$$f")" "$$(gzip -9c "$$f" | wc -c)"; \
	  done; \
	else \
	  echo "no $(DIST)/*.wasm yet: run 'make wasm'"; \
	fi

setup: ## install what a fresh machine lacks (rust targets, envoy, Debian packages); idempotent
	bash .ci/install

test: setup lint test-native test-wasm32 test-integration test-compose ## THE test command: installs, lints (rustfmt, clippy), then native, wasm32, end-to-end and (with Docker) compose tests

test-native: ## cargo test for the workspace (host target); the end-to-end crate runs in test-integration, the CEL comparison crate has no tests
	@echo "==> native tests"
	$(CARGO) test --no-fail-fast --workspace --exclude wasmixer-integration --exclude wasmixer-bench-expr

# The engine crate's tests on wasm32-unknown-unknown, run by wasm-bindgen-test-runner under
# node. The runner must match the wasm-bindgen version in Cargo.lock (.ci/install does that).
# --lib --tests: doctests are not cross-compiled.
test-wasm32: ## the engine crate's tests on wasm32-unknown-unknown (wasm-bindgen-test-runner, node)
	@echo "==> wasm32 tests (wasmixer-engine on wasm32-unknown-unknown)"
	@if ! grep -q '^name = "wasm-bindgen"$$' Cargo.lock; then \
	  echo "SKIP test-wasm32: Cargo.lock has no wasm-bindgen yet (no wasm-bindgen-test dev-dependency)"; \
	  exit 0; \
	fi; \
	want=$$(awk '/^name = "wasm-bindgen"$$/{getline; gsub(/[^0-9.]/,""); print; exit}' Cargo.lock); \
	if ! command -v wasm-bindgen-test-runner >/dev/null 2>&1; then \
	  echo "error: wasm-bindgen-test-runner $$want not on PATH: run 'bash .ci/install'" >&2; exit 1; \
	fi; \
	have=$$(wasm-bindgen-test-runner --version | awk '{print $$2}'); \
	if [ "$$have" != "$$want" ]; then \
	  echo "error: wasm-bindgen-test-runner is $$have, Cargo.lock wants $$want: run 'bash .ci/install'" >&2; exit 1; \
	fi; \
	set -x; \
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
	  $(CARGO) test --no-fail-fast -p wasmixer-engine --target wasm32-unknown-unknown --lib --tests

# Wasm modules only the end-to-end tests load, never shipped: built on their own (so that cargo's
# feature unification cannot change the filters' builds) into $(TEST_WASM), unoptimised.
# integration/src/dist.rs (test_wasm_path) finds them there.
TEST_WASM      := $(TARGET_DIR)/test-wasm
TEST_WASM_DIRS := istio-state-emulator
.PHONY: test-wasm-modules
test-wasm-modules: ## build the test-only Wasm modules (integration/<module>/) into $(CARGO_TARGET_DIR or target)/test-wasm/
	$(CARGO) build --release --target $(WASM_TARGET) $(foreach d,$(TEST_WASM_DIRS),-p wasmixer-$(d))
	@mkdir -p $(TEST_WASM)
	@set -e; for d in $(TEST_WASM_DIRS); do \
	  cp $(TARGET_DIR)/$(WASM_TARGET)/release/wasmixer_$${d//-/_}.wasm $(TEST_WASM)/$$d.wasm; \
	done

# --lib --tests: the harness's doc examples are `ignore`d sketches, not tests.
test-integration: wasm test-wasm-modules ## end-to-end tests: real Envoy loading dist/*.wasm (and target/test-wasm/*.wasm)
	@echo "==> integration tests (envoy: $${ENVOY_BIN:-$$(command -v envoy || echo 'missing: bash .ci/install')})"
	$(CARGO) test --no-fail-fast -p wasmixer-integration --lib --tests -- --test-threads=2

lint: ## rustfmt check, clippy (host, all targets), clippy for the filters on wasm32, rustdoc links
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) $(addprefix -p ,$(FILTER_PKGS)) -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace -q

clean: ## remove build output and dist/
	$(CARGO) clean
	rm -rf $(DIST)

# The seed scenarios on a local mesh (integration/src/bin/demo.rs): bookinfo and sleep/httpbin
# behind Envoy sidecars with the filters, Prometheus, a trace receiver. RUN_ARGS=--keep leaves
# the mesh up at the end and prints its URLs.
RUN_ARGS ?=
run: setup wasm ## the seed scenarios on a local mesh of Envoy sidecars (RUN_ARGS=--keep keeps it up)
	$(CARGO) run -q -p wasmixer-integration --bin demo -- $(RUN_ARGS)

# OCI images of the filters for Istio WasmPlugin `oci://` URLs (envoy-config/oci/build-oci.sh):
# dist/oci/<filter>/ (OCI layout) and dist/oci/<filter>.oci.tar, tagged with the crate version.
OCI_VERSION ?= $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
.PHONY: oci
oci: wasm ## OCI images of the filters (dist/oci/): Istio's oci:// format, no registry needed
	@echo "==> OCI images $(OCI_VERSION) in $(DIST)/oci"
	bash envoy-config/oci/build-oci.sh $(DIST) $(DIST)/oci $(OCI_VERSION)

# The mesh as containers (envoy-config/docker-compose.yml): images FROM scratch (no registry),
# up, the seed's deny and metrics scenarios, down. Skips with a SKIP line without Docker.
.PHONY: test-compose
test-compose: wasm ## the compose mesh: build images, up, seed deny + metrics scenarios, down (skips without Docker)
	bash envoy-config/compose/test-compose.sh

# Load benchmark (bench/README.md): every filter against bare Envoy and Envoy's native filters in
# one run; writes bench/results/latest.json, cpu-per-request.svg, latest.md and the README table.
# The driver is built unoptimised on purpose (it only starts processes and reads /proc; the
# release profile's LTO would add a minute). BENCH_ARGS passes options, e.g. BENCH_ARGS="--only deny-seed".
BENCH_ARGS ?=
.PHONY: bench-quick
bench: setup wasm ## load benchmark, ~8 min: CPU/request, RPS, latency, RSS vs bare Envoy and native filters
	$(CARGO) run -q -p wasmixer-bench -- $(BENCH_ARGS)

bench-quick: setup wasm ## the load benchmark in about a minute (fewer, shorter turns; bench/results/latest-quick.*)
	$(CARGO) run -q -p wasmixer-bench -- --quick $(BENCH_ARGS)

# The setups whose ratio targets a paired run judges (their baselines and natives come along).
PAIRED_SETUPS ?= deny-seed,deny-peer
bench-paired: setup wasm ## CPU ratios of PAIRED_SETUPS (default deny-seed,deny-peer) with every setup loaded at once, ~2 min; bench/results/latest-together.*
	$(CARGO) run -q -p wasmixer-bench -- --together --only $(PAIRED_SETUPS) --rounds 15 --latency-secs 0 $(BENCH_ARGS)

bench-instructions: setup wasm ## instructions per request of each one-hop setup under callgrind (deterministic), ~8 min; bench/results/instructions.*
	$(CARGO) run -q -p wasmixer-bench -- --instructions $(BENCH_ARGS)

bench-expr: ## CEXL evaluation ns/op and allocations vs cel-interpreter (CEL); writes bench/results/expr.json
	$(CARGO) run --release -p wasmixer-bench-expr

# Times `wasmixer validate` on generated files of 10,000 and 50,000 rules (two shapes, see the
# script); validation is linear in the rule count (issue 25: 50,000 rules in under 10 s).
VALIDATE_SIZES ?= 10000 50000
bench-validate: ## time `wasmixer validate` (release) on generated files of VALIDATE_SIZES rules (default 10000 50000)
	$(CARGO) build --release -q -p wasmixer-cli
	bash bench/validate/scale.sh $(TARGET_DIR)/release/wasmixer $(VALIDATE_SIZES)

bench-request-paths: ## each seed plan's per-request work inside a filter (native, host answered from memory): ns, allocations, host reads
	$(CARGO) run --release -p wasmixer-bench-expr --bin request_paths

# Its own target directory: the build keeps the name section (strip none), which would otherwise
# make cargo rebuild the filters' dependencies for the next `make wasm`.
PROFILE_TARGET_DIR := $(TARGET_DIR)/wasm-profile
# Filters built as `make wasm` builds them, with their name section kept, for the function
# report of `--functions` (bench/run/src/wasm_functions.rs).
NAMED_DIST       := target/wasm-named
NAMED_TARGET_DIR := target/wasm-named-build
PROFILE_SETUPS   ?= metrics-standard

profile-instructions: setup ## instructions per request of PROFILE_SETUPS (default metrics-standard) and the filter functions that run them, under callgrind
	CARGO_TARGET_DIR=$(NAMED_TARGET_DIR) CARGO_PROFILE_RELEASE_STRIP=none WASM_METADCE_FLAGS=-g \
	  $(MAKE) wasm DIST=$(NAMED_DIST) WASM_OPT_FLAGS="$(WASM_OPT_FLAGS) -g --strip-dwarf"
	$(CARGO) run -q -p wasmixer-bench -- --instructions --functions 30 --only $(PROFILE_SETUPS) \
	  --dist $(NAMED_DIST) --out $(NAMED_DIST)/results --no-readme $(BENCH_ARGS)

profile-request-paths: ## the same per-request work as WebAssembly under node (V8), profiled: the functions that take the time
	CARGO_TARGET_DIR=$(PROFILE_TARGET_DIR) CARGO_PROFILE_RELEASE_STRIP=none \
	  $(CARGO) build --release --target $(WASM_TARGET) -p wasmixer-bench-expr --bin request_paths
	@out=$$(mktemp -d); \
	node --cpu-prof --cpu-prof-dir=$$out --cpu-prof-interval 100 bench/expr/wasm-profile/run.mjs \
	  $(PROFILE_TARGET_DIR)/$(WASM_TARGET)/release/request_paths.wasm $(CURDIR); \
	echo "==> self time by function (all four plans; node $$(node --version))"; \
	node bench/expr/wasm-profile/summarize.mjs $$out/*.cpuprofile 30; \
	rm -rf $$out
