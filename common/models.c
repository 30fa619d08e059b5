/* models.c -- see models.h. */
#include "models.h"

#include <string.h>

const char MSG_MODEL_UNKNOWN[] = "不支持的模型 (unknown \"model\": not one of ai_models)";
const char MSG_MODEL_NOT_STRING[] = "model 必须是字符串 (\"model\" must be a string)";

const char *models_default(const struct config *cfg)
{
    return cfg->ai_models.n ? cfg->ai_models.items[0] : cfg->ai_model;
}

static int is(const char *item, const char *name, size_t len)
{
    return strlen(item) == len && memcmp(item, name, len) == 0;
}

const char *models_check(const struct config *cfg, const char *name, size_t len)
{
    if (!cfg->ai_models.n)
        return is(cfg->ai_model, name, len) ? NULL : MSG_MODEL_UNKNOWN;
    for (size_t i = 0; i < cfg->ai_models.n; i++)
        if (is(cfg->ai_models.items[i], name, len))
            return NULL;
    return MSG_MODEL_UNKNOWN;
}
