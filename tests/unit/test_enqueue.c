/* test_enqueue.c -- the commands that queue a job (common/enqueue.c): with
 * redis_wait_replicas the last one is WAIT, and what its reply means; the
 * script goes as EVAL until Redis has it, then as EVALSHA (common/redis_script.c). */
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
    struct script sc;
    script_init(&sc, enqueue_lua);
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
          enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &sc) == 0 && e.ncmds == 1 && !e.waits &&
              arg_is(&e.cmd[0], 0, "XADD"));

    cfg.redis_wait_replicas = 2;
    CHECK("with redis_wait_replicas 2: XADD, then WAIT 2 700",
          enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &sc) == 0 && e.ncmds == 2 && e.waits &&
              arg_is(&e.cmd[0], 0, "XADD") && e.cmd[1].argc == 3 && arg_is(&e.cmd[1], 0, "WAIT") &&
              arg_is(&e.cmd[1], 1, "2") && arg_is(&e.cmd[1], 2, "700"));
    CHECK("an image: MULTI, SET, XADD, EXEC, then WAIT",
          enqueue_prepare(&e, &k, &cfg, &image, "png", 3, &sc) == 0 && e.ncmds == 5 && e.waits &&
              arg_is(&e.cmd[0], 0, "MULTI") && arg_is(&e.cmd[3], 0, "EXEC") &&
              arg_is(&e.cmd[4], 0, "WAIT"));
    cfg.rate_messages_per_minute = 5;
    redisReply two = {.type = REDIS_REPLY_INTEGER, .integer = 2};
    redisReply one = {.type = REDIS_REPLY_INTEGER, .integer = 1};
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = (char *)"ERR", .len = 3};
    CHECK("with a quota: the script, then WAIT",
          enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &sc) == 0 && e.ncmds == 2 &&
              e.scripted && arg_is(&e.cmd[0], 0, "EVAL") && arg_is(&e.cmd[0], 1, enqueue_lua) &&
              arg_is(&e.cmd[1], 0, "WAIT"));

    /* the script by its SHA1 once SCRIPT LOAD gave it */
    const char *sha = "0123456789abcdef0123456789abcdef01234567";
    redisReply loaded = {.type = REDIS_REPLY_STRING, .str = (char *)sha, .len = 40};
    redisReply noscript = {.type = REDIS_REPLY_ERROR,
                           .str = (char *)"NOSCRIPT No matching script. Please use EVAL.",
                           .len = 45};
    redisReply id = {.type = REDIS_REPLY_STRING, .str = (char *)"1-0", .len = 3};
    const char *argv[3];
    size_t argvlen[3];
    CHECK("SCRIPT LOAD <the script>",
          script_load_argv(&sc, argv, argvlen) == 3 && strcmp(argv[1], "LOAD") == 0 &&
              argvlen[2] == strlen(enqueue_lua));
    CHECK("a bad SCRIPT LOAD reply leaves EVAL",
          script_loaded(&sc, &id) != 0 && script_loaded(&sc, NULL) != 0 &&
              enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &sc) == 0 &&
              arg_is(&e.cmd[0], 0, "EVAL"));
    CHECK("loaded: EVALSHA <sha>",
          script_loaded(&sc, &loaded) == 0 && enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &sc) == 0 &&
              arg_is(&e.cmd[0], 0, "EVALSHA") && arg_is(&e.cmd[0], 1, sha) &&
              arg_is(&e.cmd[0], 2, "7"));
    CHECK("a reply that is not NOSCRIPT changes nothing",
          script_heard(&sc, &id) == 0 && script_heard(&sc, &err) == 0 && script_heard(&sc, NULL) == 0 &&
              enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &sc) == 0 &&
              arg_is(&e.cmd[0], 0, "EVALSHA"));
    CHECK("NOSCRIPT (a SCRIPT FLUSH): EVAL again",
          script_heard(&sc, &noscript) == 1 && enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &sc) == 0 &&
              arg_is(&e.cmd[0], 0, "EVAL") && arg_is(&e.cmd[0], 1, enqueue_lua));
    CHECK("an error reply to that EVAL (it never ran): still EVAL",
          script_heard(&sc, &err) == 0 && enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &sc) == 0 &&
              arg_is(&e.cmd[0], 0, "EVAL"));
    CHECK("EVAL answered: the script is cached again, EVALSHA",
          script_heard(&sc, &id) == 0 && enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &sc) == 0 &&
              arg_is(&e.cmd[0], 0, "EVALSHA"));
    script_heard(&sc, &noscript);
    script_connected(&sc);
    CHECK("a new connection, its SCRIPT LOAD sent first: EVALSHA", 
          enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &sc) == 0 && arg_is(&e.cmd[0], 0, "EVALSHA"));
    script_connected(&sc);
    CHECK("a new connection whose SCRIPT LOAD failed (-NOPERM): EVAL",
          script_loaded(&sc, &err) != 0 && enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &sc) == 0 &&
              arg_is(&e.cmd[0], 0, "EVAL"));
    script_connected(&sc);
    CHECK("... and the next connection's calls wait for its SCRIPT LOAD: EVAL",
          enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &sc) == 0 && arg_is(&e.cmd[0], 0, "EVAL"));
    struct script fresh;
    script_init(&fresh, enqueue_lua);
    script_connected(&fresh);
    CHECK("a first connection: EVAL until SCRIPT LOAD answers",
          enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &fresh) == 0 && arg_is(&e.cmd[0], 0, "EVAL"));
    cfg.rate_messages_per_minute = 0;
    CHECK("no script: not scripted",
          enqueue_prepare(&e, &k, &cfg, &text, NULL, 0, &sc) == 0 && !e.scripted);

    CHECK("WAIT said 2 of 2: replicated", enqueue_replicated(&two, &cfg) == 0);
    CHECK("WAIT said 1 of 2: not", enqueue_replicated(&one, &cfg) != 0);
    CHECK("an error or no reply: not",
          enqueue_replicated(&err, &cfg) != 0 && enqueue_replicated(NULL, &cfg) != 0);
    return check_failed ? 1 : 0;
}
