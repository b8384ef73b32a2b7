# uring-echo: build, test and run the echo server.
#
#   make run      release build, then serve on io_uring at port 6666 (BACKEND=epoll PORT=7000 to change)
#   make test     the test suite (swift test), then the benchmark kit's Python tests (make bench-test);
#                 installs python3, gcc and util-linux first when python3, cc or taskset is missing,
#                 and linux-perf when perf is (optional: its smoke test skips without it)
#   make build    debug build;  make release: release build;  make clean: remove build products
#   make bench-test   the benchmark kit's Python unit tests only (benchmarks/tests; needs python3)
#   make bench-deps   matplotlib for the plots (benchmarks/plot): a venv at benchmarks/.venv with
#                     benchmarks/requirements.txt (installs python3-venv first when it is missing)
#   make peer-deps    what the benchmark peers need from Debian, each only when missing: golang-go (go,
#                     go-mt), cargo and librust-tokio-dev (tokio, tokio-mt; built offline from its crates)
#   make vm-deps      what benchmarks/on-kernel needs, each only when missing: qemu-system-x86,
#                     linux-image-amd64 (Debian 12's 6.1 in /boot), busybox-static, python3-venv, and
#                     virtme-ng in benchmarks/.venv-vm (pinned in benchmarks/requirements-vm.txt)
#   make test-kernels the release build, then benchmarks/kernel-tests: one boot of Debian 12's 6.1 under
#                     qemu (installs vm-deps first), where echo's negotiation, --features, the
#                     conformance cases and a one-round benchmarks/run are checked
#
# Every target that builds installs liburing-dev first when pkg-config cannot find liburing.

SWIFT   ?= swift
BACKEND ?= uring
PORT    ?= 6666

.PHONY: all deps test-deps build release run test bench-test bench-deps peer-deps vm-deps test-kernels clean

all: build

# Installs the Debian packages named in $$missing when there are any (with $$apt_flags, if set): as root with apt-get directly,
# otherwise through sudo when there is one. One place for every target that installs something.
define apt_install
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
		elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
		else echo "make: missing$$missing; installing needs root: apt-get install$$missing" >&2; exit 1; fi; \
		echo "make: installing$$missing"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$apt_flags $$missing; \
	fi
endef

# liburing-dev (and pkg-config, which SwiftPM uses to find it), only when missing.
deps:
	@missing=""; \
	pkg-config --exists liburing 2>/dev/null || missing=" liburing-dev pkg-config"; \
	$(apt_install)

# What the kit's tests run besides Swift: python3, a C compiler (the calibration probe) and taskset;
# perf too when the distribution has linux-perf (benchmarks/profile's smoke test skips without it).
test-deps: deps
	@command -v perf >/dev/null 2>&1 || ( missing=" linux-perf"; $(apt_install) ) || \
		echo "make: linux-perf not installed; the kit's profile smoke test will be skipped" >&2
	@missing=""; \
	command -v python3 >/dev/null 2>&1 || missing="$$missing python3"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc"; \
	command -v taskset >/dev/null 2>&1 || missing="$$missing util-linux"; \
	$(apt_install)

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

run: deps
	$(SWIFT) run -c release echo --backend $(BACKEND) --port $(PORT)

test: test-deps
	$(SWIFT) test
	$(MAKE) bench-test

bench-test: test-deps
	cd benchmarks && python3 -m tests

# python3-venv only when `python3 -m venv` or ensurepip is missing (Debian and Ubuntu ship it apart);
# then the venv and the pinned packages.
bench-deps: test-deps
	@missing=""; \
	{ python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' >/dev/null 2>&1; } || missing=" python3-venv"; \
	$(apt_install)
	@benchmarks/.venv/bin/python -m pip --version >/dev/null 2>&1 || python3 -m venv --clear benchmarks/.venv
	benchmarks/.venv/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt

# The peers in benchmarks/peers/ (see their READMEs); benchmarks/run skips a peer whose toolchain is missing.
peer-deps: deps
	@missing=""; \
	command -v go >/dev/null 2>&1 || missing="$$missing golang-go"; \
	command -v cargo >/dev/null 2>&1 || missing="$$missing cargo"; \
	ls -d /usr/share/cargo/registry/tokio-1.* >/dev/null 2>&1 || missing="$$missing librust-tokio-dev"; \
	$(apt_install)

# Recommends left out: the guest needs none of qemu's or the kernel's (firmware, GUI, UEFI), and they
# would double the install time. The venv is made again only when the pinned list changed.
vm-deps:
	@missing=""; apt_flags="--no-install-recommends"; \
	command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$$missing qemu-system-x86"; \
	ls /boot/vmlinuz-6.1.* >/dev/null 2>&1 || missing="$$missing linux-image-amd64"; \
	dpkg-query -W -f='$${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing="$$missing busybox-static"; \
	{ python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' >/dev/null 2>&1; } || missing="$$missing python3-venv"; \
	$(apt_install)
	@if [ -x benchmarks/.venv-vm/bin/vng ] && cmp -s benchmarks/requirements-vm.txt benchmarks/.venv-vm/requirements-vm.txt; then :; else \
		echo "make: virtme-ng into benchmarks/.venv-vm"; \
		python3 -m venv --clear benchmarks/.venv-vm && \
		benchmarks/.venv-vm/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements-vm.txt && \
		cp benchmarks/requirements-vm.txt benchmarks/.venv-vm/requirements-vm.txt; \
	fi

# The guest runs the host's release binaries (its filesystem is the host's, read-only): built here first.
test-kernels: test-deps vm-deps
	$(SWIFT) build -c release
	benchmarks/kernel-tests

clean:
	$(SWIFT) package clean
