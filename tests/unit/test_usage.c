/* test_usage.c -- token usage: whom an answer counts for, the day, the read
 * script's arguments and the JSON of GET /api/usage. */
#define TEST_NAME "usage"
#include "check.h"
#include "keys.h"
#include "usage.h"

static redisReply str_reply(char *s)
{
    return (redisReply){.type = REDIS_REPLY_STRING, .str = s, .len = strlen(s)};
}

static void test_members_and_days(void)
{
    CHECK_STR("a user counts as its subject", "user:alice", usage_member("user:alice"));
    CHECK_STR("an address (no authentication) as anonymous", USAGE_ANONYMOUS, usage_member("addr:127.0.0.1"));
    CHECK_STR("... a job without a user too", USAGE_ANONYMOUS, usage_member(NULL));
    char day[USAGE_DAY_LEN + 1];
    usage_day(1764633600000LL, day); /* 2025-12-02T00:00:00Z */
    CHECK_STR("the day is UTC's", "2025-12-02", day);
    usage_day(1764633599999LL, day);
    CHECK_STR("... the ms before midnight is the day before", "2025-12-01", day);
    struct keys k;
    char key[128];
    keys_init(&k, "p:");
    CHECK("the day's key", usage_day_key(&k, "2025-12-02", key, sizeof(key)) == 0 &&
                               !strcmp(key, "p:usage:2025-12-02"));
    struct usage u = USAGE_UNKNOWN;
    CHECK("unknown usage", !usage_known(&u));
    u.prompt_tokens = 0;
    CHECK("... half is unknown too", !usage_known(&u));
    u.completion_tokens = 0;
    CHECK("zero tokens are known", usage_known(&u));
}

static void test_read(void)
{
    static struct usage_read r;
    struct keys k;
    keys_init(&k, "p:");
    CHECK("three days of one member", usage_read_argv(&r, &k, "user:bob", 3, 1764633600000LL) == 0 &&
                                          r.argc == 8 && !strcmp(r.argv[3], "p:usage:") &&
                                          !strcmp(r.argv[4], "user:bob") &&
                                          !strcmp(r.argv[5], "2025-12-02") &&
                                          !strcmp(r.argv[7], "2025-11-30"));
    CHECK("every member", usage_read_argv(&r, &k, NULL, 1, 0) == 0 && !strcmp(r.argv[4], ""));
    CHECK("no more days than usage_days may be", usage_read_argv(&r, &k, NULL, USAGE_MAX_DAYS + 1, 0) != 0);

    char d[] = "2025-12-02", alice[] = "user:alice", anon[] = "anonymous";
    redisReply day = str_reply(d), a = str_reply(alice), n = str_reply(anon);
    redisReply p = {.type = REDIS_REPLY_INTEGER, .integer = 7},
               c = {.type = REDIS_REPLY_INTEGER, .integer = 9},
               x = {.type = REDIS_REPLY_INTEGER, .integer = 2};
    redisReply *f1[5] = {&day, &a, &p, &c, &x}, *f2[5] = {&day, &n, &p, &c, &x};
    redisReply r1 = {.type = REDIS_REPLY_ARRAY, .elements = 5, .element = f1},
               r2 = {.type = REDIS_REPLY_ARRAY, .elements = 5, .element = f2};
    redisReply *rows[2] = {&r1, &r2};
    redisReply all = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = rows};
    struct buf b = BUF_INIT;
    CHECK("the rows as JSON: a user by name, anonymous as null", usage_json(&b, &all) == 0);
    CHECK_STR("... exactly",
              "{\"usage\":[{\"day\":\"2025-12-02\",\"user\":\"alice\",\"prompt_tokens\":7,"
              "\"completion_tokens\":9,\"answers\":2},{\"day\":\"2025-12-02\",\"user\":null,"
              "\"prompt_tokens\":7,\"completion_tokens\":9,\"answers\":2}]}", b.data);
    buf_reset(&b);
    all.elements = 0;
    CHECK("none", usage_json(&b, &all) == 0 && !strcmp(b.data, "{\"usage\":[]}"));
    buf_reset(&b);
    f1[2] = &day;
    all.elements = 1;
    CHECK("a row of another shape is refused", usage_json(&b, &all) != 0);
    buf_free(&b);
}

int main(void)
{
    test_members_and_days();
    test_read();
    return check_failed ? 1 : 0;
}
