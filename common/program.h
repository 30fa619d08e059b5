/* program.h -- how every program of the project starts and ends: settings
 * loaded, the log opened with the API key masked, signals routed. */
#ifndef AIMSG_PROGRAM_H
#define AIMSG_PROGRAM_H

#include <stddef.h>

#include "config.h"

/* Loads cfg and opens the log. Returns 1 when main() should return
 * *exit_code right away (--help: 0, a bad setting: 2), else 0. */
int program_start(struct config *cfg, int argc, char **argv, const struct config_usage *usage,
                  int *exit_code);
void program_end(struct config *cfg);

/* SIGTERM and SIGINT call handler (without SA_RESTART, so blocking calls
 * return); SIGPIPE is ignored. Returns -1 if a handler cannot be set. */
int program_on_stop_signals(void (*handler)(int));

/* The name this process goes by in Redis (a ws-push instance, a worker's
 * consumer): `configured` if set, else <hostname>-<pid>. */
void program_instance_name(const char *configured, char *buf, size_t len);

#endif
