#!/bin/sh
# Builds go-echo with the Go toolchain alone (no modules to fetch): build/go-echo, and
# build/version.txt (what the report names). The build cache stays in build/. Exit status 3, with
# one line on stderr, when go is missing (`make peer-deps` installs golang-go): benchmarks/run
# then skips this peer.
set -eu
cd "$(dirname "$0")"
command -v go >/dev/null 2>&1 || { echo "go not found (make peer-deps installs golang-go)" >&2; exit 3; }
mkdir -p build
export GOCACHE="$PWD/build/cache" GOPATH="$PWD/build/gopath" GOPROXY=off GOFLAGS= GOTOOLCHAIN=local
go build -o build/go-echo .
go version | cut -d' ' -f3 > build/version.txt
