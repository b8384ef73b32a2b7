# uring-echo: build, test and run the echo server.
#
#   make run      release build, then serve on io_uring at port 6666 (BACKEND=epoll PORT=7000 to change)
#   make test     the test suite (swift test)
#   make build    debug build;  make release: release build;  make clean: remove build products
#
# Every target that builds installs liburing-dev first when pkg-config cannot find liburing.

SWIFT   ?= swift
BACKEND ?= uring
PORT    ?= 6666

.PHONY: all deps build release run test clean

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

clean:
	$(SWIFT) package clean
