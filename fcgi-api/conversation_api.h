/* conversation_api.h -- the routes about one conversation, by its id:
 * GET /api/conversation/<id> (its turns) and DELETE /api/conversation/<id>
 * (forget it) (docs/PROTOCOL.md; common/conversation.h). */
#ifndef AIMSG_CONVERSATION_API_H
#define AIMSG_CONVERSATION_API_H

#include "api.h"

void conversation_api_get(struct api *api, struct request *r);
void conversation_api_delete(struct api *api, struct request *r);

#endif
