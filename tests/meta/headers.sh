#!/bin/sh
# Each public header compiles alone, as C99 with -pedantic -Werror, and as
# C++.
set -eu
src=${abs_top_srcdir:-.}
pass=0
fail=0
for h in "$src"/include/xcp/*.h "$src"/include/xcp/sys/*.h; do
    rel=${h#"$src"/include/}
    if printf '#include <%s>\nint main(void) { return 0; }\n' "$rel" |
        ${CC:-cc} -std=c99 -pedantic -Werror -Wall -Wextra -fsyntax-only \
            -I"$src/include" -x c - 2>/tmp/hdr.$$; then
        pass=$((pass + 1))
    else
        echo "C99: $rel"; cat /tmp/hdr.$$; fail=$((fail + 1))
    fi
    if printf '#include <%s>\nint main() { return 0; }\n' "$rel" |
        ${CXX:-c++} -std=c++11 -pedantic -Werror -Wall -fsyntax-only \
            -I"$src/include" -x c++ - 2>/tmp/hdr.$$; then
        pass=$((pass + 1))
    else
        echo "C++: $rel"; cat /tmp/hdr.$$; fail=$((fail + 1))
    fi
done
rm -f /tmp/hdr.$$
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
