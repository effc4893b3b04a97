#!/bin/sh
# The committed generated files are what tools/genmodel.py makes from the
# model today: regeneration changes nothing.
set -eu
src=${abs_top_srcdir:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lib/libxcp/model" "$tmp/lib/libxcp/core" "$tmp/include"
cp "$src/lib/libxcp/model/model.def" "$src/lib/libxcp/model/errors.def" \
    "$tmp/lib/libxcp/model/"
cp -r "$src/include/xcp" "$tmp/include/"
rm -f "$tmp/include/xcp/classes.h"
python3 "$src/tools/genmodel.py" "$tmp"
python3 "$src/tools/gen_go.py" "$tmp"
fail=0
for f in include/xcp/classes.h lib/libxcp/model/gen_model.h \
         lib/libxcp/model/gen_model.c lib/libxcp/engine/gen_api.c \
         lib/libxcp/model/gen_errors.c lib/libxcp/core/gen_errors.h \
         lib/libxcp/libxcp.sym bindings/go/model_gen.go; do
    if ! cmp -s "$src/$f" "$tmp/$f"; then
        echo "stale: $f (run make regen)"; fail=1
    fi
done
if [ $fail -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $fail
