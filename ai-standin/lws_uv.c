/* lws_uv.c -- libwebsockets on a libuv loop that the program turns
 * (see lws_uv.h for why). */
#define _POSIX_C_SOURCE 200809L

#include <uv.h>

#include "log.h"
#include "lws_uv.h"

static uv_loop_t loop;
static void *loops[1] = {&loop};
static int started;

int lws_uv_prepare(struct lws_context_creation_info *info)
{
    int rc = uv_loop_init(&loop);
    if (rc != 0) {
        log_error("cannot start the event loop (libuv): %s", uv_strerror(rc));
        return -1;
    }
    started = 1;
    info->options |= LWS_SERVER_OPTION_LIBUV;
    info->foreign_loops = loops;
    return 0;
}

void lws_uv_turn(void)
{
    uv_run(&loop, UV_RUN_ONCE);
}

void lws_uv_close(void)
{
    if (!started)
        return;
    /* lws closed its handles in lws_context_destroy; their close callbacks
     * run in the loop (a few turns; bounded, should one never close) */
    for (int turns = 0; turns < 1000 && uv_run(&loop, UV_RUN_NOWAIT); turns++)
        ;
    if (uv_loop_close(&loop) != 0)
        log_warn("the event loop still had handles open at exit");
    started = 0;
}
