# uring-echo: build, test and run the echo server.
#
#   make run      release build, then serve on io_uring at port 6666 (BACKEND=epoll PORT=7000 to change)
#   make test     the test suite (swift test), then the benchmark kit's Python tests (make bench-test)
#   make build    debug build;  make release: release build;  make clean: remove build products
#   make bench-test   the benchmark kit's Python unit tests only (benchmarks/tests; needs python3)
#   make bench-deps   matplotlib for the plots (benchmarks/plot): a venv at benchmarks/.venv with
#                     benchmarks/requirements.txt (installs python3-venv first when it is missing)
#
# Every target that builds installs liburing-dev first when pkg-config cannot find liburing.

SWIFT   ?= swift
BACKEND ?= uring
PORT    ?= 6666

.PHONY: all deps build release run test bench-test bench-deps clean

all: build

# liburing-dev (and pkg-config, which SwiftPM uses to find it), only when missing. As root it
# runs apt-get directly; otherwise through sudo when there is one.
deps:
	@if ! pkg-config --exists liburing 2>/dev/null; then \
		if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
		elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
		else echo "make: liburing-dev is missing and installing it needs root: apt-get install liburing-dev pkg-config" >&2; exit 1; fi; \
		echo "make: installing liburing-dev and pkg-config"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq liburing-dev pkg-config; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

run: deps
	$(SWIFT) run -c release echo --backend $(BACKEND) --port $(PORT)

test: deps
	$(SWIFT) test
	$(MAKE) bench-test

bench-test:
	cd benchmarks && python3 -m tests

# python3-venv only when `python3 -m venv` or ensurepip is missing (Debian and Ubuntu ship it apart), as root
# directly or through sudo, like deps; then the venv and the pinned packages.
bench-deps:
	@if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then \
		if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
		elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
		else echo "make: python3-venv is missing and installing it needs root: apt-get install python3-venv" >&2; exit 1; fi; \
		echo "make: installing python3-venv"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	fi
	@benchmarks/.venv/bin/python -m pip --version >/dev/null 2>&1 || python3 -m venv --clear benchmarks/.venv
	benchmarks/.venv/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt

clean:
	$(SWIFT) package clean
