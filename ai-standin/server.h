/* server.h -- the stand-in's HTTP side on libwebsockets: the routes
 * (POST /v1/chat/completions, GET /v1/models, GET /health), the API key
 * check, and the pacing of answers (token delays on due timers, due.h). */
#ifndef AIMSG_STANDIN_SERVER_H
#define AIMSG_STANDIN_SERVER_H

#include <libwebsockets.h>

#include "config.h"

/* The protocol serving every HTTP request of the context. */
extern const struct lws_protocols server_protocol;

/* Settings from cfg and STANDIN_REQUIRE_KEY. */
void server_init(const struct config *cfg);
void server_free(void);

/* For the start-up line: whether a key is required, the default delay. */
int server_requires_key(void);
long server_delay_ms(void);

#endif
