#!/bin/sh
# The committed Python model (bindings/python/xcp/_model.py) is what
# tools/gen_python.py makes from the model today: regeneration changes
# nothing. (Also checked inside the pytest suite; this one needs no pytest.)
set -eu
src=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lib/libxcp/model"
cp "$src/lib/libxcp/model/model.def" "$tmp/lib/libxcp/model/"
python3 "$src/tools/gen_python.py" "$tmp"
f=bindings/python/xcp/_model.py
if cmp -s "$src/$f" "$tmp/$f"; then
    echo "1 passed, 0 failed"
else
    echo "stale: $f (run make regen)"; echo "0 passed, 1 failed"; exit 1
fi
