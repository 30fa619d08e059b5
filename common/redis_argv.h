/* redis_argv.h -- a Redis command's arguments, added one at a time, for
 * hiredis' *CommandArgv calls. Works on any struct with the members
 *
 *   int argc; const char *argv[N]; size_t argvlen[N];
 *
 * so each command's struct sizes its own N (answer.h, job.h). The strings
 * are not copied: they must outlive the call that sends them. */
#ifndef AIMSG_REDIS_ARGV_H
#define AIMSG_REDIS_ARGV_H

#include <stdlib.h>
#include <string.h>

/* s (n bytes; binary-safe) as the next argument */
#define ARGV_ADD(a, s, n)                                                                      \
    redis_argv_add((a)->argv, (a)->argvlen, &(a)->argc, sizeof((a)->argv) / sizeof((a)->argv[0]), \
                   (s), (n))
/* the C string s as the next argument */
#define ARGV_STR(a, s) redis_argv_str((a)->argv, (a)->argvlen, &(a)->argc,                     \
                                      sizeof((a)->argv) / sizeof((a)->argv[0]), (s))

static inline void redis_argv_add(const char **argv, size_t *argvlen, int *argc, size_t room,
                                  const char *s, size_t n)
{
    if ((size_t)*argc >= room)
        abort(); /* a command has as many arguments as its code adds: a bug, not an input */
    argv[*argc] = s;
    argvlen[(*argc)++] = n;
}

static inline void redis_argv_str(const char **argv, size_t *argvlen, int *argc, size_t room,
                                  const char *s)
{
    redis_argv_add(argv, argvlen, argc, room, s, strlen(s));
}

#endif
