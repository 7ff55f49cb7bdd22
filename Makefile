# A thin wrapper around CMake. The two commands the README promises:
#   make run    install missing packages, build, serve config/morphd.ini
#   make test   install missing packages, build, run the whole test suite
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CONFIG ?= config/morphd.ini

.PHONY: all deps configure build run test check test-sanitize test-perf package test-package test-systemd test-scale docs fuzz bench clean help

all: build

help:
	@echo "make run     install dependencies, build, start morphd with $(CONFIG)"
	@echo "make test    install dependencies, build, run the test suite"
	@echo "make build   build only (into $(BUILD_DIR)/)"
	@echo "make test-sanitize  the test suite built with ASan+UBSan (into $(BUILD_DIR)-sanitize/)"
	@echo "make package  Debian packages morph and morph-dev (into $(BUILD_DIR)-package/)"
	@echo "make test-package  install the packages into a scratch root and serve"
	@echo "make test-systemd  the packages in a Debian container under systemd (root)"
	@echo "make test-scale  three morphd behind HAProxy and nginx (PROXY, failover, restarts)"
	@echo "make test-perf  instructions per request (callgrind) against the libuv baseline; fails past the limits"
	@echo "make bench   the benchmark suite (a few minutes; see docs/benchmarks.md)"
	@echo "make deps    install the missing Debian packages only"
	@echo "make clean   remove $(BUILD_DIR)/"

deps:
	@sh scripts/install-deps.sh

$(BUILD_DIR)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

configure: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	./$(BUILD_DIR)/morphd -c $(CONFIG)

test check: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# The whole suite again, built with AddressSanitizer + UndefinedBehaviorSanitizer.
test-sanitize: deps
	cmake -S . -B $(BUILD_DIR)-sanitize -DCMAKE_BUILD_TYPE=Debug -DMORPH_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)-sanitize -j $(JOBS)
	ctest --test-dir $(BUILD_DIR)-sanitize --output-on-failure -j $(JOBS)

# libFuzzer targets, each run for FUZZ_SECONDS from the seed corpora
# (new inputs go to a scratch folder, not into the repository).
FUZZ_SECONDS ?= 12
FUZZ_TARGETS = config line length netstring delimiter resp http1 http ws detect echo uppercase reverse msgpath tls proxy lua lua_patterns
fuzz: deps
	CC=clang cmake -S . -B $(BUILD_DIR)-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DMORPH_FUZZ=ON -DMORPH_BUILD_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)-fuzz -j $(JOBS)
	@for t in $(FUZZ_TARGETS); do \
	    echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	    scratch=$$(mktemp -d); log=$(BUILD_DIR)-fuzz/fuzz_$$t.log; \
	    if ./$(BUILD_DIR)-fuzz/tests/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	        -artifact_prefix=$(BUILD_DIR)-fuzz/crash-$$t- \
	        "$$scratch" tests/fuzz/corpus/$$t > "$$log" 2>&1; then \
	        grep '^Done' "$$log"; rm -rf "$$scratch"; \
	    else \
	        tail -40 "$$log"; rm -rf "$$scratch"; \
	        echo "fuzz_$$t found a failure; the input is in $(BUILD_DIR)-fuzz/"; exit 1; \
	    fi; \
	done

# The benchmark suite (Release build): morphd against hand-written libuv and
# raw epoll servers, side by side; writes $(BUILD_DIR)-bench/bench-results/.
bench:
	@sh scripts/install-deps.sh --bench
	cmake -S . -B $(BUILD_DIR)-bench -DCMAKE_BUILD_TYPE=Release -DMORPH_BUILD_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)-bench -j $(JOBS)
	bash bench/run.sh $(BUILD_DIR)-bench

# Instructions per request, counted by callgrind, against the libuv
# baseline of the same Release tree (tests/perf/perf_test.sh has the limits).
test-perf: deps
	cmake -S . -B $(BUILD_DIR)-perf -DCMAKE_BUILD_TYPE=Release -DMORPH_BUILD_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)-perf -j $(JOBS)
	bash tests/perf/perf_test.sh $(BUILD_DIR)-perf

# Regenerates the key table of docs/configuration.md from morphd itself.
docs: build
	sh scripts/gen-config-doc.sh $(BUILD_DIR)

# Debian packages (morph and morph-dev), built for /usr in their own tree.
# Built with Debian's hardening flags (dpkg-buildflags, hardening=+all):
# fortified functions, immediate binding, PIE, stack protector.
DEB_HARDENING = DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get
package: deps
	cmake -S . -B $(BUILD_DIR)-package -DCMAKE_BUILD_TYPE=Release \
	    -DCMAKE_INSTALL_PREFIX=/usr -DMORPH_BUILD_TESTS=OFF \
	    -DCMAKE_C_FLAGS="$$($(DEB_HARDENING) CFLAGS) $$($(DEB_HARDENING) CPPFLAGS)" \
	    -DCMAKE_EXE_LINKER_FLAGS="$$($(DEB_HARDENING) LDFLAGS)" \
	    -DCMAKE_SHARED_LINKER_FLAGS="$$($(DEB_HARDENING) LDFLAGS)" \
	    -DCMAKE_MODULE_LINKER_FLAGS="$$($(DEB_HARDENING) LDFLAGS)" $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)-package -j $(JOBS)
	cd $(BUILD_DIR)-package && cpack
	@ls $(BUILD_DIR)-package/*.deb

# lintian, then installs the packages into a scratch dpkg root, serves
# them, removes them.
test-package: package
	@sh scripts/install-deps.sh --package
	bash tests/package/package_test.sh $(BUILD_DIR)-package

# The packages as a Debian user gets them, under a real systemd: a Debian 12
# container booted with systemd-nspawn (as root). Its root file system is
# made once by debootstrap and cached in $(BUILD_DIR)-package/systemd-rootfs.
test-systemd: package
	@sh scripts/install-deps.sh --systemd
	bash tests/systemd/systemd_test.sh $(BUILD_DIR)-package

# Three morphd instances behind a real HAProxy and nginx (stream module),
# on loopback: replies, the client's address through PROXY headers, an
# instance killed mid-run, a rolling restart. docs/scaling.md quotes its
# configurations.
test-scale: build
	@sh scripts/install-deps.sh --scale
	bash tests/scale/scale_test.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(BUILD_DIR)-sanitize $(BUILD_DIR)-package $(BUILD_DIR)-fuzz $(BUILD_DIR)-bench
