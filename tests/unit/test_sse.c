/* test_sse.c -- the SSE parser: events split anywhere, all line endings. */
#define TEST_NAME "sse"
#include "check.h"
#include "../../worker/sse.h"

static char events[8][256];
static int nevents;

static int collect(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    if (nevents < 8)
        snprintf(events[nevents++], sizeof(events[0]), "%.*s", (int)len, data);
    return 0;
}

static int stop_at_second(void *ctx, const char *data, size_t len)
{
    collect(ctx, data, len);
    return nevents == 2 ? -1 : 0;
}

static void feed_bytewise(const char *s)
{
    struct sse p;
    sse_init(&p);
    nevents = 0;
    for (size_t i = 0; s[i]; i++)
        sse_feed(&p, s + i, 1, collect, NULL);
    sse_free(&p);
}

static void feed_whole(const char *s)
{
    struct sse p;
    sse_init(&p);
    nevents = 0;
    sse_feed(&p, s, strlen(s), collect, NULL);
    sse_free(&p);
}

int main(void)
{
    const char *stream = ": comment\n\ndata: {\"a\":1}\n\nevent: x\ndata: [DONE]\n\n";
    feed_whole(stream);
    CHECK("two events from one read", nevents == 2);
    CHECK_STR("first event data", "{\"a\":1}", events[0]);
    CHECK_STR("second event data", "[DONE]", events[1]);

    feed_bytewise(stream);
    CHECK("same events when split at every byte", nevents == 2 && !strcmp(events[1], "[DONE]"));

    feed_bytewise("data: one\r\n\r\ndata: two\r\rdata:three\n\n");
    CHECK("CRLF, CR and LF line ends", nevents == 3);
    CHECK_STR("CRLF event", "one", events[0]);
    CHECK_STR("CR event", "two", events[1]);
    CHECK_STR("no space after colon", "three", events[2]);

    feed_whole("data: a\ndata: b\n\n");
    CHECK_STR("multi-line data joined with newline", "a\nb", events[0]);

    feed_whole("data: incomplete");
    CHECK("no event without the blank line", nevents == 0);

    feed_whole("id: 5\nretry: 10\n\n");
    CHECK("an event without data is not dispatched", nevents == 0);

    struct sse p;
    sse_init(&p);
    nevents = 0;
    int rc = sse_feed(&p, "data: 1\n\ndata: 2\n\ndata: 3\n\n", 27, stop_at_second, NULL);
    CHECK("callback can stop parsing", rc == -1 && nevents == 2);
    sse_free(&p);

    return check_failed ? 1 : 0;
}
