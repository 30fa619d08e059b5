/* test_usage.c -- token usage: whom an answer counts for, the day, the read
 * script's arguments, the page parameters and cursors, and the JSON of
 * GET /api/usage. */
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
    struct usage_page page;
    struct keys k;
    keys_init(&k, "p:");
    usage_page_init(&page);
    CHECK("three days of one member, a page of the default limit",
          usage_read_argv(&r, &k, "user:bob", 3, 1764633600000LL, &page) == 0 && r.argc == 10 &&
              !strcmp(r.argv[3], "p:usage:") && !strcmp(r.argv[4], "user:bob") &&
              !strcmp(r.argv[5], "100") && !strcmp(r.argv[6], "") &&
              !strcmp(r.argv[7], "2025-12-02") && !strcmp(r.argv[9], "2025-11-30"));
    CHECK("every member", usage_read_argv(&r, &k, NULL, 1, 0, &page) == 0 && !strcmp(r.argv[4], ""));
    CHECK("no more days than usage_days may be",
          usage_read_argv(&r, &k, NULL, USAGE_MAX_DAYS + 1, 0, &page) != 0);
    page.limit = USAGE_LIMIT_MAX + 1;
    CHECK("no larger page than USAGE_LIMIT_MAX", usage_read_argv(&r, &k, NULL, 1, 0, &page) != 0);
}

static void test_page(void)
{
    static struct usage_read r;
    struct usage_page p;
    struct keys k;
    keys_init(&k, "p:");
    usage_page_init(&p);
    CHECK("limit: 1 to USAGE_LIMIT_MAX", !usage_page_limit(&p, "1") && !usage_page_limit(&p, "1000") &&
                                            p.limit == 1000);
    CHECK("... not 0, 1001, -1, +5, 5x, 1e3, '' or a huge number",
          usage_page_limit(&p, "0") == MSG_USAGE_LIMIT_BAD && usage_page_limit(&p, "1001") &&
              usage_page_limit(&p, "-1") && usage_page_limit(&p, "+5") && usage_page_limit(&p, "5x") &&
              usage_page_limit(&p, "1e3") && usage_page_limit(&p, "") &&
              usage_page_limit(&p, "99999999999999999999999") && p.limit == 1000);
    CHECK_STR("... its reason names the bounds",
              "limit 必须是 1 到 1000 之间的整数 (\"limit\" must be an integer from 1 to 1000)",
              MSG_USAGE_LIMIT_BAD);
    CHECK("day: YYYY-MM-DD", !usage_page_day(&p, "2025-12-02") && !strcmp(p.day, "2025-12-02"));
    CHECK("... not 2025-13-01, 2025-12-2, 2025/12/02 or 2025-12-02x",
          usage_page_day(&p, "2025-13-01") == MSG_USAGE_DAY_BAD && usage_page_day(&p, "2025-12-2") &&
              usage_page_day(&p, "2025/12/02") && usage_page_day(&p, "2025-12-02x"));

    /* a cursor as a reply names it, read back */
    char d[] = "2025-12-01", m[] = "user:al/ice?+";
    redisReply day = str_reply(d), member = str_reply(m);
    redisReply *last[2] = {&day, &member};
    redisReply resume = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = last},
               none = {.type = REDIS_REPLY_ARRAY};
    redisReply *parts[2] = {&none, &resume};
    redisReply reply = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = parts};
    struct buf b = BUF_INIT;
    char cursor[256] = "";
    CHECK("a reply with more to read names the next page",
          usage_json(&b, &reply) == 0 && sscanf(b.data, "{\"usage\":[],\"next\":\"%255[^\"]\"}", cursor) == 1);
    static const char base64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    CHECK("... a cursor safe in a URL, without padding", strspn(cursor, base64url) == strlen(cursor));
    usage_page_init(&p);
    CHECK("... which reads back as the day and member",
          !usage_page_cursor(&p, cursor) && !strcmp(p.after_day, d) && !strcmp(p.after_member, m));
    CHECK("a cursor that is not one: not base64url, padded, too short, another member",
          usage_page_cursor(&p, "!!!!") == MSG_USAGE_CURSOR_BAD && usage_page_cursor(&p, "") &&
              usage_page_cursor(&p, "MjAyNS0xMi0wMWFub255bW91cw==") &&
              usage_page_cursor(&p, "MjAyNS0xMi0wMQ") && usage_page_cursor(&p, "MjAyNS0xMi0wMWFkZHI6eA"));
    CHECK("... anonymous is a member", !usage_page_cursor(&p, "MjAyNS0xMi0wMWFub255bW91cw") &&
                                           !strcmp(p.after_member, "anonymous"));

    /* the days the next page reads */
    usage_page_init(&p);
    usage_page_cursor(&p, cursor); /* 2025-12-01, user:al/ice?+ */
    CHECK("every member: the page begins after the cursor's member, on its day",
          usage_read_argv(&r, &k, NULL, 3, 1764633600000LL, &p) == 0 && r.argc == 9 &&
              !strcmp(r.argv[6], m) && !strcmp(r.argv[7], "2025-12-01") &&
              !strcmp(r.argv[8], "2025-11-30"));
    CHECK("one member sorting after the cursor's: from the cursor's day",
          usage_read_argv(&r, &k, "user:bob", 3, 1764633600000LL, &p) == 0 && r.argc == 9 &&
              !strcmp(r.argv[6], "") && !strcmp(r.argv[7], "2025-12-01"));
    CHECK("... the cursor's own member (or one before it): from the day before",
          usage_read_argv(&r, &k, m, 3, 1764633600000LL, &p) == 0 && r.argc == 8 &&
              !strcmp(r.argv[7], "2025-11-30") &&
              usage_read_argv(&r, &k, "anonymous", 3, 1764633600000LL, &p) == 0 && r.argc == 8);
    CHECK("a day later (a new day's rows are not on the next page): the same",
          usage_read_argv(&r, &k, NULL, 3, 1764633600000LL + 86400000LL, &p) == 0 &&
              r.argc == 8 && !strcmp(r.argv[6], m) && !strcmp(r.argv[7], "2025-12-01"));
    CHECK("... the cursor's day gone from the window: none",
          usage_read_argv(&r, &k, NULL, 3, 1764633600000LL + 5 * 86400000LL, &p) == 0 && r.argc == 7);
    usage_page_init(&p);
    usage_page_day(&p, "2025-12-01");
    CHECK("?day=: that day only", usage_read_argv(&r, &k, NULL, 3, 1764633600000LL, &p) == 0 &&
                                      r.argc == 8 && !strcmp(r.argv[7], "2025-12-01"));
    usage_page_day(&p, "2025-11-01");
    CHECK("... a day not shown: none", usage_read_argv(&r, &k, NULL, 3, 1764633600000LL, &p) == 0 &&
                                           r.argc == 7);
    buf_free(&b);
}

static void test_json(void)
{
    char d[] = "2025-12-02", alice[] = "user:alice", anon[] = "anonymous";
    redisReply day = str_reply(d), a = str_reply(alice), n = str_reply(anon);
    redisReply p = {.type = REDIS_REPLY_INTEGER, .integer = 7},
               c = {.type = REDIS_REPLY_INTEGER, .integer = 9},
               x = {.type = REDIS_REPLY_INTEGER, .integer = 2};
    redisReply *f1[5] = {&day, &a, &p, &c, &x}, *f2[5] = {&day, &n, &p, &c, &x};
    redisReply r1 = {.type = REDIS_REPLY_ARRAY, .elements = 5, .element = f1},
               r2 = {.type = REDIS_REPLY_ARRAY, .elements = 5, .element = f2};
    redisReply *rows[2] = {&r1, &r2};
    redisReply all = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = rows},
               none = {.type = REDIS_REPLY_ARRAY};
    redisReply *parts[2] = {&all, &none};
    redisReply reply = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = parts};
    struct buf b = BUF_INIT;
    CHECK("the rows as JSON: a user by name, anonymous as null", usage_json(&b, &reply) == 0);
    CHECK_STR("... exactly, and no next when none remain",
              "{\"usage\":[{\"day\":\"2025-12-02\",\"user\":\"alice\",\"prompt_tokens\":7,"
              "\"completion_tokens\":9,\"answers\":2},{\"day\":\"2025-12-02\",\"user\":null,"
              "\"prompt_tokens\":7,\"completion_tokens\":9,\"answers\":2}]}", b.data);
    buf_reset(&b);
    all.elements = 0;
    CHECK("none", usage_json(&b, &reply) == 0 && !strcmp(b.data, "{\"usage\":[]}"));
    buf_reset(&b);
    f1[2] = &day;
    all.elements = 1;
    CHECK("a row of another shape is refused", usage_json(&b, &reply) != 0);
    buf_reset(&b);
    f1[2] = &p;
    none.elements = 1;
    none.element = rows;
    CHECK("... a resume of another shape too", usage_json(&b, &reply) != 0);
    buf_reset(&b);
    CHECK("... and a reply of another shape (the rows alone)", usage_json(&b, &all) != 0);
    buf_free(&b);
}

int main(void)
{
    test_members_and_days();
    test_read();
    test_page();
    test_json();
    return check_failed ? 1 : 0;
}
