#!/bin/sh
# make check wrapper: the Python binding's pytest suite (tests/python) with
# Debian's python3 and python3-pytest, against the build tree's libxcp.so.
# Exit 0 pass, 1 fail, 77 skip (no pytest).
srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if ! "$PY" -c "import pytest" 2>/dev/null; then
    echo "SKIP: python3-pytest is not installed (tools/deps.sh installs it)"
    exit 77
fi
# The binding loads the library with ctypes into Debian's python3: the
# sanitizer build's libxcp (out of tree, ASan-instrumented) cannot be
# loaded into an uninstrumented interpreter (ASan aborts: its runtime must
# come first), so that build leaves this suite to the normal one, as
# bindings/go/test.sh does.
build=${abs_top_builddir:-$srcdir}
if [ "$(cd "$srcdir" && pwd)" != "$(cd "$build" && pwd)" ]; then
    echo "SKIP: the Python binding's suite runs against an in-tree build of libxcp only"
    exit 77
fi
cd "$srcdir/tests/python" || exit 1
exec "$PY" -B -m pytest -q -p no:cacheprovider "$srcdir/tests/python" "$@"
