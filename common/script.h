/* script.h -- a Lua script sent by its SHA1 (EVALSHA) once Redis has it.
 *
 * EVAL sends the script's text with every call, and Redis hashes it each
 * time (the enqueue script is ~2.3 KB: a fifth of Redis' time per queued
 * job). A connection asks SCRIPT LOAD first (script_load_argv); the reply
 * gives the SHA1, and every later call on that connection (Redis answers in
 * order) can go as EVALSHA. Until the SHA1 is known, and after a NOSCRIPT
 * (SCRIPT FLUSH by an operator), calls go as EVAL, which puts the script
 * back in Redis' cache: the call that met NOSCRIPT failed (its caller says
 * "try again"), the next one succeeds.
 *
 * One struct per program and script, owned by whoever owns the connection;
 * a new connection (a restarted Redis, a failover) calls script_connected
 * and sends SCRIPT LOAD again. */
#ifndef AIMSG_SCRIPT_H
#define AIMSG_SCRIPT_H

#include <stddef.h>
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

/* SCRIPT LOAD's reply: 0 when it gave the SHA1. */
int script_loaded(struct script *s, const redisReply *r);

/* The first two arguments of a call: EVALSHA <sha> or EVAL <lua>. Returns
 * whether it went by SHA1 (for script_heard). */
int script_call_head(const struct script *s, const char **argv, size_t *argvlen);

/* A call's reply (NULL: none came). A NOSCRIPT error: calls go as EVAL
 * again, returns 1; a reply to EVAL puts EVALSHA back. */
int script_heard(struct script *s, const redisReply *r);

#endif
