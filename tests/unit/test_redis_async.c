/* test_redis_async.c -- the reconnect pacing of common/redis_async.c (the
 * command deadlines are exercised against a stalled Redis in
 * tests/integration/faults.sh). */
#define TEST_NAME "redis_async"
#include "check.h"
#include "redis_async.h"

int main(void)
{
    struct redis_backoff b = {0};
    CHECK("the first attempt is at once", redis_backoff_due(&b, 1000) == 1);
    CHECK("the next waits 100 ms", redis_backoff_due(&b, 1099) == 0 && redis_backoff_due(&b, 1100) == 1);
    CHECK("then 200 ms", redis_backoff_due(&b, 1299) == 0 && redis_backoff_due(&b, 1300) == 1);
    long long now = 1300;
    for (int i = 0; i < 20; i++) {
        now += 10000;
        redis_backoff_due(&b, now);
    }
    CHECK("the wait stops growing at 5 s", b.delay_ms == 5000);
    redis_backoff_reset(&b);
    CHECK("after a success the next attempt is at once", redis_backoff_due(&b, now) == 1);

    struct redis_async ra = {0};
    CHECK("disconnected: nothing to wait for", redis_async_events(&ra) == 0 && redis_async_fd(&ra) == -1);
    CHECK("disconnected: nothing expires", redis_async_expire(&ra, now) == 0);
    return check_failed ? 1 : 0;
}
