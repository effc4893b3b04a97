#!/bin/sh
# The xe golden transcripts (tests/xe/*.cmd) with the real daemon serving
# each fragment's state dir, so that every xe command goes through the
# daemon's unix socket and the remote session driver: the transcripts must
# equal the goldens made with the embedded engine. Skips (77) when
# cmd/xcpd/xcpd has not been built.
top=${abs_top_builddir:-$PWD}
src=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
XE_DAEMON=${XCPD:-$top/cmd/xcpd/xcpd}
if [ ! -x "$XE_DAEMON" ]; then
    echo "xe_golden_daemon.sh: no $XE_DAEMON: skipped" >&2
    exit 77
fi
XE=${XE:-$top/cmd/xe/xe}
export XE XE_DAEMON
exec sh "$src/tests/xe/run.sh" "$@"
