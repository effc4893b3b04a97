#!/bin/sh
# Errors are raised through the generated XCP__ERR_<NAME> macros of
# core/gen_errors.h: an error errors.def lists compiles with exactly its
# parameters (or a form's); a name it does not list, a wrong parameter
# count, or a direct xcp__fail() call does not.
. "${abs_top_srcdir:-.}/tests/meta/lib.sh"

# try EXPECT BODY: compile BODY inside a function returning int.
try() {
    printf '#include "core.h"\nint f(void);\nint f(void)\n{\n    %s\n}\n' \
        "$2" >"$tmp/t.c"
    if ${CC:-cc} -std=gnu11 -Wall -Werror -fsyntax-only \
        -I"$src/include" -I"$src/lib/libxcp/core" "$tmp/t.c" \
        2>"$tmp/err"; then
        got=ok
    else
        got=fails
    fi
    if [ "$got" = "$1" ]; then
        ok
    else
        bad "expected to $1 but $got: $2"; cat "$tmp/err"
    fi
}

try ok 'return XCP__ERR_VM_BAD_POWER_STATE("OpaqueRef:x", "halted", "running");'
try ok 'return XCP__ERR_SR_REQUIRED("");'
try ok 'return XCP__ERR_PIF_IS_NOT_MANAGEMENT_INTERFACE("OpaqueRef:NULL");'
try ok 'return XCP__ERR_VM_IS_TEMPLATE_OP("OpaqueRef:x", "start");'
try ok 'return XCP__ERR_SESSION_AUTHENTICATION_FAILED();'
try fails 'return XCP__ERR_VM_BAD_POWER_STATE("OpaqueRef:x", "halted");'
try fails 'return XCP__ERR_SESSION_AUTHENTICATION_FAILED("root");'
try fails 'return XCP__ERR_NO_SUCH_ERROR_ANYWHERE("x");'
try fails 'return xcp__fail("VM_BAD_POWER_STATE", "a", "b", "c", NULL);'

meta_done
