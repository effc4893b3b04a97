#!/bin/sh
# The layering of shared/style.md holds: no #include and no call across its
# rules (tools/layering.py holds them, with the known exceptions, each named
# by the issue item that removes it). Run after the library is built: the
# calls are read from its objects with nm.
set -eu
src=${abs_top_srcdir:-.}
build=${abs_top_builddir:-.}
if python3 "$src/tools/layering.py" "$src" "$build"; then
    echo "1 passed, 0 failed"
else
    echo "0 passed, 1 failed"; exit 1
fi
