/* test_redis_url.c -- redis_url parsing (common/redis_conn.c), including
 * what the fuzzer found (tests/fuzz/fuzz_redis_url.c). */
#define TEST_NAME "redis_url"
#include "check.h"
#include "redis_conn.h"

static int parse(struct redis_addr *a, const char *url)
{
    char err[256];
    return redis_addr_parse(a, url, err, sizeof(err));
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
    return check_failed ? 1 : 0;
}
