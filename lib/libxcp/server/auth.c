/* auth: being written. */
#include "server.h"
