/* sentinel_master.h -- for the unit tests of the Sentinel lookup: what
 * redis_sentinel_master found, as one string to compare. */
#ifndef AIMSG_TEST_SENTINEL_MASTER_H
#define AIMSG_TEST_SENTINEL_MASTER_H

#include <stdio.h>

#include "redis_conn.h"
#include "redis_sentinel.h"

/* "host:port", or "" when the lookup fails */
static inline const char *master(const struct redis_addr *a)
{
    static char shown[300];
    char host[256], err[512];
    int port;
    if (redis_sentinel_master(a, host, sizeof(host), &port, err, sizeof(err)) != 0)
        return "";
    snprintf(shown, sizeof(shown), "%s:%d", host, port);
    return shown;
}

#endif
