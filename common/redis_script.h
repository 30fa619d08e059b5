/* redis_script.h -- a Lua script sent by its SHA1 (EVALSHA) once Redis has it.
 *
 * EVAL sends the script's text with every call, and Redis hashes it each
 * time (the enqueue script is ~2.3 KB: some 13 % of Redis' time per queued
 * job). A connection that runs the script asks SCRIPT LOAD first; the
 * reply gives the SHA1, and every later call on that connection (Redis
 * answers in order) can go as EVALSHA. Until the SHA1 is known, when a
 * SCRIPT LOAD failed, and after a NOSCRIPT (SCRIPT FLUSH by an operator),
 * calls go as EVAL, which puts the script back in Redis' cache: the calls
 * sent before the NOSCRIPT was read failed (their callers say "try again"),
 * the next ones succeed.
 *
 * One struct per program and script, owned by whoever owns the connection;
 * each new connection calls script_connected and sends SCRIPT LOAD first. */
#ifndef AIMSG_REDIS_SCRIPT_H
#define AIMSG_REDIS_SCRIPT_H

#include <stddef.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

struct script {
    const char *lua;
    char sha[41];           /* "" until a SCRIPT LOAD answered */
    int cached;             /* Redis has it, as far as this connection knows */
};

void script_init(struct script *s, const char *lua);

/* A new connection: the script is not known to be there until its SCRIPT
 * LOAD (sent first on it) answers, or, once the SHA1 is known, at once. */
void script_connected(struct script *s);

/* SCRIPT LOAD <lua>: argv/argvlen need 3 slots; returns argc. */
int script_load_argv(const struct script *s, const char **argv, size_t *argvlen);

/* SCRIPT LOAD's reply: 0 when it gave the SHA1; otherwise (-1) calls go as
 * EVAL, and the SHA1 is forgotten until a SCRIPT LOAD answers again. */
int script_loaded(struct script *s, const redisReply *r);

/* script_connected, then SCRIPT LOAD first on ac (cb must call
 * script_loaded with the reply). -1 (EVAL meanwhile) when it was not sent. */
int script_load_async(struct script *s, redisAsyncContext *ac, redisCallbackFn *cb,
                      void *privdata);

/* The first two arguments of a call: EVALSHA <sha> or EVAL <lua>. Returns
 * whether it went by SHA1 (for script_heard). */
int script_call_head(const struct script *s, const char **argv, size_t *argvlen);

/* A call's reply (NULL: none came). A NOSCRIPT error: calls go as EVAL
 * again, returns 1; a reply that is not an error (the script ran, so Redis
 * has it) puts EVALSHA back. */
int script_heard(struct script *s, const redisReply *r);

#endif
