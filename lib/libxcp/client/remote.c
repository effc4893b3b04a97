/* The remote session driver (libcurl): not written yet. */
#include "client.h"

int xcp__session_open_remote(xcp_session **out, const char *uri,
                             const char *user, const char *password)
{
    XCP__UNUSED(out);
    XCP__UNUSED(uri);
    XCP__UNUSED(user);
    XCP__UNUSED(password);
    return xcp__fail("NOT_IMPLEMENTED", "remote sessions", NULL);
}
