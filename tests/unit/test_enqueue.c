/* test_enqueue.c -- the commands that queue a job (common/enqueue.c): with
 * redis_wait_replicas the last one is WAIT, and what its reply means. */
#define TEST_NAME "enqueue"
#include "check.h"
#include "config.h"
#include "enqueue.h"

static int arg_is(const struct job_argv *a, int i, const char *s)
{
    return i < a->argc && a->argvlen[i] == strlen(s) && memcmp(a->argv[i], s, a->argvlen[i]) == 0;
}

int main(void)
{
    struct keys k;
    struct config cfg;
    struct enqueue e;
    memset(&cfg, 0, sizeof(cfg));
    cfg.image_ttl = 60;
    cfg.redis_wait_timeout_ms = 700;
    if (keys_init(&k, "t:") != 0)
        return 1;
    struct job text = {.kind = JOB_TEXT, .content = "hi", .content_len = 2, .reply = "r",
                       .user = "addr:1"};
    struct job image = {.kind = JOB_IMAGE, .content = "", .reply = "r", .user = "addr:1",
                        .image_key = "t:img", .mime = "image/png"};

    CHECK("without redis_wait_replicas: one XADD, no WAIT",
          enqueue_prepare(&e, &k, &cfg, &text, NULL, 0) == 0 && e.ncmds == 1 && !e.waits &&
              arg_is(&e.cmd[0], 0, "XADD"));

    cfg.redis_wait_replicas = 2;
    CHECK("with redis_wait_replicas 2: XADD, then WAIT 2 700",
          enqueue_prepare(&e, &k, &cfg, &text, NULL, 0) == 0 && e.ncmds == 2 && e.waits &&
              arg_is(&e.cmd[0], 0, "XADD") && e.cmd[1].argc == 3 && arg_is(&e.cmd[1], 0, "WAIT") &&
              arg_is(&e.cmd[1], 1, "2") && arg_is(&e.cmd[1], 2, "700"));
    CHECK("an image: MULTI, SET, XADD, EXEC, then WAIT",
          enqueue_prepare(&e, &k, &cfg, &image, "png", 3) == 0 && e.ncmds == 5 && e.waits &&
              arg_is(&e.cmd[0], 0, "MULTI") && arg_is(&e.cmd[3], 0, "EXEC") &&
              arg_is(&e.cmd[4], 0, "WAIT"));
    cfg.rate_messages_per_minute = 5;
    CHECK("with a quota: the script, then WAIT",
          enqueue_prepare(&e, &k, &cfg, &text, NULL, 0) == 0 && e.ncmds == 2 &&
              arg_is(&e.cmd[0], 0, "EVAL") && arg_is(&e.cmd[1], 0, "WAIT"));

    redisReply two = {.type = REDIS_REPLY_INTEGER, .integer = 2};
    redisReply one = {.type = REDIS_REPLY_INTEGER, .integer = 1};
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = (char *)"ERR", .len = 3};
    CHECK("WAIT said 2 of 2: replicated", enqueue_replicated(&two, &cfg) == 0);
    CHECK("WAIT said 1 of 2: not", enqueue_replicated(&one, &cfg) != 0);
    CHECK("an error or no reply: not",
          enqueue_replicated(&err, &cfg) != 0 && enqueue_replicated(NULL, &cfg) != 0);
    return check_failed ? 1 : 0;
}
