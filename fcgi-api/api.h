/* api.h -- the HTTP API: routes and their handlers (docs/PROTOCOL.md). */
#ifndef AIMSG_API_H
#define AIMSG_API_H

#include "config.h"
#include "request.h"
#include "store.h"

struct api {
    const struct config *cfg;
    struct store store;
};

void api_handle(struct api *api, struct request *r);

#endif
