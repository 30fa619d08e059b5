/* metrics_api.h -- fcgi-api's part in the metrics (common/metrics.h): it
 * counts its requests by route and status, publishes its own series, and
 * serves GET /metrics, the exposition of every live process. */
#ifndef AIMSG_METRICS_API_H
#define AIMSG_METRICS_API_H

#include "api.h"

void metrics_api_init(const struct config *cfg);
/* A request ended: route is its index in the route table, or -1. */
void metrics_api_count(int route, const char *route_path, int status);
/* GET /metrics */
void metrics_api_get(struct api *api, struct request *r);
/* Publishes this process' series when it is time; returns the ms until the
 * next time (for the loop's wait). */
long metrics_api_tick(struct api *api);

#endif
