/* usage_api.h -- GET /api/usage: the token counts of the last usage_days
 * days, the caller's own or, for an admin, every user's, a page at a time
 * (?limit=, ?cursor=, ?day=; docs/PROTOCOL.md; common/usage.h). */
#ifndef AIMSG_USAGE_API_H
#define AIMSG_USAGE_API_H

#include "api.h"

void usage_api_get(struct api *api, struct request *r);

#endif
