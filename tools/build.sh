#!/bin/sh
# Configure (once) and build libxcp in the source tree.
set -eu
cd "$(dirname "$0")/.."
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure --prefix="${PREFIX:-/usr/local}"
make -j"$(nproc)"
