/* models.h -- which model answers: the models a client may ask for
 * ("model" on a message) and the rule and reason when it asks for another,
 * defined once for fcgi-api and ws-push; the worker asks for the job's
 * model (job.h), or the default.
 *
 * ai_models lists the models a client may name; the first is the default.
 * Empty, the only one is ai_model. */
#ifndef AIMSG_MODELS_H
#define AIMSG_MODELS_H

#include <stddef.h>

#include "config.h"

extern const char MSG_MODEL_UNKNOWN[];
extern const char MSG_MODEL_NOT_STRING[];

/* The model of a message that names none. */
const char *models_default(const struct config *cfg);
/* NULL when a message may ask for name[0..len), else the reason. */
const char *models_check(const struct config *cfg, const char *name, size_t len);

#endif
