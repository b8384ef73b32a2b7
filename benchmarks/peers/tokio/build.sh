#!/bin/sh
# Builds tokio-echo offline against Debian's crates: build/tokio-echo, and build/version.txt (what
# the report names). Exit status 3, with one line on stderr, when the toolchain or the crates are
# missing (`make peer-deps` installs them): benchmarks/run then skips this peer.
set -eu
cd "$(dirname "$0")"
for tool in cargo rustc; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found (make peer-deps installs cargo and librust-tokio-dev)" >&2; exit 3; }
done
ls -d /usr/share/cargo/registry/tokio-1.* >/dev/null 2>&1 \
    || { echo "Debian's tokio crate is missing from /usr/share/cargo/registry (make peer-deps installs librust-tokio-dev)" >&2; exit 3; }
mkdir -p build
CARGO_TARGET_DIR="$PWD/build/target" cargo build --release --offline --quiet
cp build/target/release/tokio-echo build/tokio-echo
tokio=$(sed -n '/^name = "tokio"$/{n;s/^version = "\(.*\)"$/\1/p;}' Cargo.lock)
echo "tokio $tokio, $(rustc --version | cut -d' ' -f1-2)" > build/version.txt
