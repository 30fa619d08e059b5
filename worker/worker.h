/* worker.h -- takes jobs from the Redis stream and streams their answers.
 *
 * One thread, one loop: curl's multi handle carries every model call, and
 * the two Redis connections (intake: the blocking XREADGROUP; ctl: PUBLISH,
 * XACK, XCLAIM, ...) are polled alongside it as extra descriptors. */
#ifndef AIMSG_WORKER_H
#define AIMSG_WORKER_H

#include "config.h"

struct worker;

struct worker *worker_new(const struct config *cfg);
/* Runs until worker_stop() and the running answers are finished (or the
 * grace period is over). Returns 0. */
int worker_run(struct worker *w);
void worker_stop(struct worker *w);     /* async-signal-safe */
void worker_free(struct worker *w);

#endif
