/*
 * console.*: consoles come with their domains; creating or destroying one
 * by hand answers NOT_IMPLEMENTED.
 */
#include "../engine/engine.h"

static int not_impl(xcp__ctx *c)
{
    return XCP__ERR_NOT_IMPLEMENTED(c->msg->wire);
}

const struct xcp__impl xcp__impl_console[] = {
    {"console.create", not_impl},
    {"console.destroy", not_impl},
    {NULL, NULL},
};
