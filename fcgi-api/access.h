/* access.h -- who is asking an HTTP request: the user of its bearer token
 * when authentication is on (common/auth.h), else its client address (the
 * peer the web server reports, or X-Forwarded-For from a trusted proxy:
 * common/proxy.h). Fills r->subject, r->inbox, r->owner and r->admin. */
#ifndef AIMSG_ACCESS_H
#define AIMSG_ACCESS_H

#include "api.h"

/* 0, or -1 when the request was answered (401). */
int access_identify(struct api *api, struct request *r);

#endif
