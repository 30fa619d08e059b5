/* redis_script.c -- see redis_script.h. */
#define _POSIX_C_SOURCE 200809L
#include "redis_script.h"

#include <string.h>

void script_init(struct script *s, const char *lua)
{
    s->lua = lua;
    s->sha[0] = '\0';
    s->cached = 0;
}

void script_connected(struct script *s)
{
    s->cached = s->sha[0] != '\0';
}

int script_load_argv(const struct script *s, const char **argv, size_t *argvlen)
{
    argv[0] = "SCRIPT";
    argvlen[0] = 6;
    argv[1] = "LOAD";
    argvlen[1] = 4;
    argv[2] = s->lua;
    argvlen[2] = strlen(s->lua);
    return 3;
}

int script_loaded(struct script *s, const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
        s->sha[0] = '\0'; /* (the next connection waits for its own SCRIPT LOAD) */
        s->cached = 0;
        return -1;
    }
    memcpy(s->sha, r->str, 41);
    s->cached = 1;
    return 0;
}

int script_load_async(struct script *s, redisAsyncContext *ac, redisCallbackFn *cb,
                      void *privdata)
{
    const char *argv[3];
    size_t argvlen[3];
    script_connected(s);
    if (redisAsyncCommandArgv(ac, cb, privdata, script_load_argv(s, argv, argvlen), argv,
                              argvlen) == REDIS_OK)
        return 0;
    s->cached = 0;
    return -1;
}

int script_call_head(const struct script *s, const char **argv, size_t *argvlen)
{
    int by_sha = s->cached && s->sha[0];
    argv[0] = by_sha ? "EVALSHA" : "EVAL";
    argvlen[0] = strlen(argv[0]);
    argv[1] = by_sha ? s->sha : s->lua;
    argvlen[1] = strlen(argv[1]);
    return by_sha;
}

int script_heard(struct script *s, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR && r->len >= 8 && memcmp(r->str, "NOSCRIPT", 8) == 0) {
        s->cached = 0;
        return 1;
    }
    if (r && r->type != REDIS_REPLY_ERROR && s->sha[0])
        s->cached = 1; /* (it ran: it is in the cache again) */
    return 0;
}
