/* lws_uv.h -- libwebsockets on a libuv loop (epoll) that the program turns.
 *
 * Debian's lws 4.1 serves with poll(): every wake-up hands the kernel the
 * whole descriptor table and lws walks it again, so with thousands of
 * connections each turn of the loop costs time in proportion to all of them,
 * not to the few that are ready. On libuv (its plugin ships in Debian as
 * libwebsockets-evlib-uv) the kernel reports only the ready ones (epoll).
 *
 * The loop is the program's (a "foreign" loop to lws), so the program keeps
 * its own turn: lws_uv_turn() where it called lws_service(). One loop per
 * process, for the one lws context. (Only the stand-in: ws-push on libuv
 * was measured no faster, and lws 4.1 there drops prepared close frames;
 * README, "The AI stand-in on libuv".) */
#ifndef AIMSG_LWS_UV_H
#define AIMSG_LWS_UV_H

#include <libwebsockets.h>

/* Before lws_create_context: makes the loop and points info at it.
 * -1 (and a log line) when libuv cannot start. */
int lws_uv_prepare(struct lws_context_creation_info *info);

/* One turn: waits for the next event or lws timer and runs what is
 * ready; lws_cancel_service() (the signal handlers use it) ends a wait.
 * (lws 4.1 arms its libuv timer after its own callbacks: an lws_sul armed
 * outside them, say in main before the loop, is seen only at the next of
 * them.) */
void lws_uv_turn(void);

/* After lws_context_destroy: lets the loop close lws's handles, frees it. */
void lws_uv_close(void);

#endif
