#!/bin/sh
# The model documents itself: every class, field and message of model.def
# has its d line (genmodel.py refuses the model otherwise), every error an
# e line names is in errors.def and is raised somewhere in the library
# (an e line is a promise about the code, not a wish list), and the
# generator refuses a model that breaks either rule.
. "${abs_top_srcdir:-.}/tests/meta/lib.sh"

# gen DIR: run the generator, strict, on the model files in DIR.
gen() {
    mkdir -p "$1/lib/libxcp/model" "$1/lib/libxcp/core" "$1/include"
    cp -r "$src/include/xcp" "$1/include/"
    XCP_MODEL_DOCS_STRICT=1 python3 "$src/tools/genmodel.py" "$1" \
        >"$1/out" 2>&1
}

mkdir "$tmp/real"
cp "$src/lib/libxcp/model/model.def" "$src/lib/libxcp/model/errors.def" \
    "$tmp/real/"
mkdir -p "$tmp/g1/lib/libxcp/model"
cp "$tmp/real/"*.def "$tmp/g1/lib/libxcp/model/"
if gen "$tmp/g1"; then ok; else bad "the model is not fully documented:"; head -20 "$tmp/g1/out"; fi

# Every error named by an e line is raised by the library's code.
for e in $(awk '$1 == "e" { for (i = 2; i <= NF; i++) print $i }' \
               "$tmp/real/model.def" | sort -u); do
    if grep -rqE "XCP__ERR_${e}(_[A-Z0-9_]+)?\(|\"${e}\"" \
           "$src/lib" "$src/hv" --include='*.c' --include='*.h' \
           --exclude='gen_*'; then
        ok
    else
        bad "model.def lists error $e but no code raises it"
    fi
done

# The generator refuses an unknown error and an undocumented field.
mkdir -p "$tmp/g2/lib/libxcp/model"
cp "$tmp/real/errors.def" "$tmp/g2/lib/libxcp/model/"
awk '{ print } /^  m clean_shutdown/ { print "    e NO_SUCH_ERROR_ANYWHERE" }' \
    "$tmp/real/model.def" >"$tmp/g2/lib/libxcp/model/model.def"
if gen "$tmp/g2"; then bad "an unknown error in an e line was accepted"
elif grep -q NO_SUCH_ERROR_ANYWHERE "$tmp/g2/out"; then ok
else bad "unknown error refused for another reason:"; cat "$tmp/g2/out"; fi

mkdir -p "$tmp/g3/lib/libxcp/model"
cp "$tmp/real/errors.def" "$tmp/g3/lib/libxcp/model/"
awk '/^  m clean_shutdown/ { print "  f undocumented_field string RO" } { print }' \
    "$tmp/real/model.def" >"$tmp/g3/lib/libxcp/model/model.def"
if gen "$tmp/g3"; then bad "an undocumented field was accepted"
elif grep -q "undocumented_field has no d line" "$tmp/g3/out"; then ok
else bad "undocumented field refused for another reason:"; cat "$tmp/g3/out"; fi

meta_done
