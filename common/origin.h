/* TEMPORARY stand-in until h-access lands */
#ifndef AIMSG_ORIGIN_H
#define AIMSG_ORIGIN_H
#include "config.h"
int origin_allowed(const struct config_list *allowed, const char *origin);
#endif
