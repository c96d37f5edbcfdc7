# sluice -- thin wrapper over CMake/CTest. `make run`, `make test`, `make bench` are the
# contract with users (see README.md); each installs missing Debian packages first.
BUILD    ?= build
FUZZ_BUILD ?= build-fuzz
JOBS     ?= 2
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 10
IMAGE    ?= sluice:dev

.PHONY: all deps build fuzz-build test run bench clean image image-fast

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# The libFuzzer targets of the lib/smtp parsers, built with clang in their own tree; ctest
# runs each for FUZZ_SECONDS (see tests/fuzz/).
fuzz-build: deps
	@if command -v clang++ >/dev/null 2>&1; then \
	  cmake -S . -B $(FUZZ_BUILD) -G Ninja -DSLUICE_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
	    -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && \
	  cmake --build $(FUZZ_BUILD) -j $(JOBS); \
	else echo "clang++ not found: fuzzers skipped"; fi

test: build fuzz-build
	cd $(BUILD) && SLUICE_FUZZ_BIN=$(abspath $(FUZZ_BUILD))/bin SLUICE_FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  ctest --output-on-failure -j $(JOBS) --timeout 900

run: build
	@scripts/run-local

bench: build
	@bench/run

# The container image of deploy/Dockerfile, tagged $(IMAGE), with podman (or buildah; see
# scripts/build-image): `image` is the release build, compiled inside a Debian 12 build
# stage; `image-fast` packages the binaries of build/ into the same runtime stage (seconds).
# Without a reachable registry the Debian 12 base is built locally with debootstrap.
image: deps
	@scripts/build-image $(IMAGE)

image-fast: build
	@BUILD=$(BUILD) scripts/build-image --fast $(IMAGE)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD) var/
