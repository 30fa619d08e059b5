/* TEMPORARY */
#include "origin.h"
#include <string.h>
int origin_allowed(const struct config_list *allowed, const char *origin)
{
    if (!allowed->n || !origin[0]) return 1;
    for (size_t i = 0; i < allowed->n; i++) if (strcmp(allowed->items[i], origin) == 0) return 1;
    return 0;
}
