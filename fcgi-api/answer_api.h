/* answer_api.h -- the routes about one answer, by its job id:
 * GET /api/answer/<id> (where it stands, its text so far) and
 * POST /api/cancel {"id":…} (docs/PROTOCOL.md). */
#ifndef AIMSG_ANSWER_API_H
#define AIMSG_ANSWER_API_H

#include "api.h"

void answer_api_get(struct api *api, struct request *r);
void answer_api_cancel(struct api *api, struct request *r);

#endif
