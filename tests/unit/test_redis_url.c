/* test_redis_url.c -- redis_url parsing (common/redis_conn.c, and the
 * sentinel:// form in common/redis_sentinel.c), including what the fuzzer
 * found (tests/fuzz/fuzz_redis_url.c). */
#define TEST_NAME "redis_url"
#include "check.h"
#include "redis_conn.h"
#include "redis_sentinel.h"
#include "sentinel_master.h"

static int parse(struct redis_addr *a, const char *url)
{
    char err[256];
    return redis_addr_parse(a, url, err, sizeof(err));
}

/* What a lookup remembers. The one Sentinel refuses connections (port 1),
 * so any answer comes from memory. */
static void test_lookup_memory(void)
{
    struct redis_addr a, b;
    CHECK("lookup: parse", parse(&a, "sentinel://127.0.0.1:1/mm") == 0 &&
                               parse(&b, "sentinel://127.0.0.1:1/other") == 0);
    CHECK_STR("lookup: no Sentinel answers", "", master(&a));
    redis_sentinel_announced(&a, "10.1.2.3", 7000);
    CHECK_STR("lookup: the announced master, without asking", "10.1.2.3:7000", master(&a));
    CHECK("lookup: the old master is superseded",
          redis_sentinel_superseded(&a, "10.9.9.9", 6379) &&
              !redis_sentinel_superseded(&a, "10.1.2.3", 7000));
    redis_sentinel_failed(&a, "10.9.9.9", 6379);
    CHECK_STR("lookup: a failure elsewhere keeps it", "10.1.2.3:7000", master(&a));
    redis_sentinel_failed(&a, "10.1.2.3", 7000);
    CHECK_STR("lookup: a failure there forgets it: the Sentinels are asked", "", master(&a));
    redis_sentinel_announced(&a, "10.1.2.4", 7000);
    CHECK_STR("lookup: another redis_url knows nothing of it", "", master(&b));
    CHECK("lookup: ... and nothing is superseded for it",
          !redis_sentinel_superseded(&b, "10.9.9.9", 6379));
}

/* a sentinel_password too long to keep is not echoed either */
static int too_long_hidden(void)
{
    struct redis_addr a;
    char url[600] = "sentinel://s1/mm?sentinel_password=", err[256];
    memset(url + strlen(url), 'k', 300);
    return redis_addr_parse(&a, url, err, sizeof(err)) != 0 && !strstr(err, "kkk") &&
           strstr(err, "too long");
}

int main(void)
{
    struct redis_addr a;
    CHECK("host, port and db", parse(&a, "redis://127.0.0.1:6380/3") == 0 &&
                                   !strcmp(a.host, "127.0.0.1") && a.port == 6380 && a.db == 3);
    CHECK("password", parse(&a, "redis://:pw@h") == 0 && !strcmp(a.password, "pw") &&
                          a.port == 6379 && a.db == 0);
    CHECK("unix socket with db", parse(&a, "unix:/tmp/r.sock?db=2") == 0 && a.is_unix &&
                                     !strcmp(a.host, "/tmp/r.sock") && a.db == 2);
    /* found by fuzzing: atoi took any text as the socket's database */
    CHECK("unix socket with a negative db refused", parse(&a, "unix:/tmp/r.sock?db=-3") != 0);
    CHECK("unix socket with a non-numeric db refused", parse(&a, "unix:/tmp/r.sock?db=x") != 0);
    CHECK("unix socket with db over 1000 refused", parse(&a, "unix:/tmp/r.sock?db=1001") != 0);
    CHECK("signed tcp db refused", parse(&a, "redis://h/+1") != 0 && parse(&a, "redis://h/-0") != 0);
    CHECK("bad port refused", parse(&a, "redis://h:0") != 0 && parse(&a, "redis://h:70000") != 0);
    CHECK("other schemes refused", parse(&a, "http://h") != 0);

    /* sentinel:// */
    CHECK("one Sentinel, default port, master name",
          parse(&a, "sentinel://10.0.0.1/mymaster") == 0 && a.nsentinels == 1 &&
              !strcmp(a.sentinels[0].host, "10.0.0.1") && a.sentinels[0].port == 26379 &&
              !strcmp(a.master_name, "mymaster") && a.db == 0 && !a.host[0] && !a.is_unix);
    CHECK("three Sentinels with ports, db",
          parse(&a, "sentinel://s1:26379,s2:26380,s3/mm/2") == 0 && a.nsentinels == 3 &&
              !strcmp(a.sentinels[1].host, "s2") && a.sentinels[1].port == 26380 &&
              !strcmp(a.sentinels[2].host, "s3") && a.sentinels[2].port == 26379 &&
              !strcmp(a.master_name, "mm") && a.db == 2);
    CHECK("trailing slash after the name", parse(&a, "sentinel://s1/mm/") == 0 && a.db == 0);
    CHECK("the Redis password and the Sentinels' password",
          parse(&a, "sentinel://:redispw@s1:1,s2:2/mm/0?sentinel_password=sentpw") == 0 &&
              !strcmp(a.password, "redispw") && !strcmp(a.sentinel_password, "sentpw") &&
              a.nsentinels == 2 && a.sentinels[0].port == 1);
    CHECK("no password by default",
          parse(&a, "sentinel://s1/mm") == 0 && !a.password[0] && !a.sentinel_password[0]);
    CHECK("master name missing refused",
          parse(&a, "sentinel://s1") != 0 && parse(&a, "sentinel://s1/") != 0 &&
              parse(&a, "sentinel://s1//0") != 0);
    CHECK("no Sentinel refused", parse(&a, "sentinel:///mm") != 0);
    CHECK("empty Sentinel in the list refused",
          parse(&a, "sentinel://s1,/mm") != 0 && parse(&a, "sentinel://,s1/mm") != 0 &&
              parse(&a, "sentinel://s1,,s2/mm") != 0);
    CHECK("bad Sentinel port refused",
          parse(&a, "sentinel://s1:0/mm") != 0 && parse(&a, "sentinel://s1:65536/mm") != 0 &&
              parse(&a, "sentinel://s1:/mm") != 0 && parse(&a, "sentinel://s1:2x/mm") != 0);
    CHECK("bad db refused",
          parse(&a, "sentinel://s1/mm/x") != 0 && parse(&a, "sentinel://s1/mm/1001") != 0 &&
              parse(&a, "sentinel://s1/mm/-1") != 0 && parse(&a, "sentinel://s1/mm/1/2") != 0);
    CHECK("unknown parameter refused", parse(&a, "sentinel://s1/mm?db=1") != 0);
    CHECK("nine Sentinels refused",
          parse(&a, "sentinel://a,b,c,d,e,f,g,h,i/mm") != 0 &&
              parse(&a, "sentinel://a,b,c,d,e,f,g,h/mm") == 0 && a.nsentinels == 8);
    CHECK("a space in the master name refused", parse(&a, "sentinel://s1/m m") != 0);

    /* redis_url_redacted: what may be logged */
    char out[256];
    CHECK_STR("redacted: no password, unchanged", "redis://h:6380/2",
              redis_url_redacted("redis://h:6380/2", out, sizeof(out)));
    CHECK_STR("redacted: redis:// password", "redis://***@h:6380/2",
              redis_url_redacted("redis://:s3cret@h:6380/2", out, sizeof(out)));
    CHECK_STR("redacted: user and password", "redis://***@h",
              redis_url_redacted("redis://u:s3cret@h", out, sizeof(out)));
    CHECK_STR("redacted: both Sentinel passwords",
              "sentinel://***@s1:1,s2/mm/0?sentinel_password=***",
              redis_url_redacted("sentinel://:s3cret@s1:1,s2/mm/0?sentinel_password=t0psecret",
                                 out, sizeof(out)));
    CHECK_STR("redacted: '@' in the Sentinels' password stays hidden",
              "sentinel://s1/mm?sentinel_password=***",
              redis_url_redacted("sentinel://s1/mm?sentinel_password=a@b", out, sizeof(out)));
    CHECK_STR("redacted: '@' and ':' in the password stay hidden", "redis://***@h",
              redis_url_redacted("redis://:a@b:c@h", out, sizeof(out)));
    CHECK_STR("redacted: an unknown scheme too", "http://***@h",
              redis_url_redacted("http://u:pw@h", out, sizeof(out)));
    CHECK_STR("redacted: unix socket unchanged", "unix:/tmp/r.sock?db=2",
              redis_url_redacted("unix:/tmp/r.sock?db=2", out, sizeof(out)));
    CHECK("redacted: a short buffer truncates",
          !strcmp(redis_url_redacted("redis://:pw@host", out, 9), "redis://"));
    char err[256];
    CHECK("parse errors do not echo the passwords",
          redis_addr_parse(&a, "sentinel://:s3cret@s1/mm?x=1&sentinel_password=t0psecret", err,
                           sizeof(err)) != 0 &&
              !strstr(err, "s3cret") && !strstr(err, "t0psecret") && strstr(err, "s1/mm"));
    CHECK("'sentinel_password too long' does not echo it", too_long_hidden());
    test_lookup_memory();
    CHECK("redis:// errors do not echo the password",
          redis_addr_parse(&a, "redis://:s3cret@h:0", err, sizeof(err)) != 0 &&
              !strstr(err, "s3cret") && strstr(err, "bad port"));
    return check_failed ? 1 : 0;
}
