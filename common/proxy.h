/* TEMPORARY stand-in until h-access lands */
#ifndef AIMSG_PROXY_H
#define AIMSG_PROXY_H
#include <stddef.h>
#include "config.h"
struct proxy_nets { size_t n; };
int proxy_nets_init(struct proxy_nets *n, const struct config_list *l, char *err, size_t errlen);
void proxy_nets_free(struct proxy_nets *n);
int proxy_client_address(const struct proxy_nets *n, const char *peer, const char *xff, char *out, size_t outlen);
#endif
