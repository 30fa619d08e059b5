/* test_sse.c -- the SSE parser: events split anywhere, all line endings,
 * memory bounded by the event cap. */
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
    sse_init(&p, 4096);
    nevents = 0;
    for (size_t i = 0; s[i]; i++)
        sse_feed(&p, s + i, 1, collect, NULL);
    sse_free(&p);
}

static void feed_whole(const char *s)
{
    struct sse p;
    sse_init(&p, 4096);
    nevents = 0;
    sse_feed(&p, s, strlen(s), collect, NULL);
    sse_free(&p);
}

/* Feeds s again and again until the parser gives up or rounds are done;
 * returns the status and the rounds fed. */
static enum sse_status feed_forever(struct sse *p, const char *s, long rounds, long *fed)
{
    enum sse_status rc = SSE_OK;
    for (*fed = 0; *fed < rounds && rc == SSE_OK; ++*fed)
        rc = sse_feed(p, s, strlen(s), collect, NULL);
    return rc;
}

static void test_caps(void)
{
    struct sse p;
    long fed;
    char event[1100];

    /* data lines that no blank line ever ends: the issue-11 stream */
    sse_init(&p, 1024);
    nevents = 0;
    enum sse_status rc = feed_forever(&p, "data: 0123456789012345678901234567890123456789\n",
                                      1000000, &fed);
    CHECK("data lines without a blank line stop the parse", rc == SSE_TOO_BIG);
    CHECK("... as soon as the event is over the cap", fed <= 1024 / 40 + 2);
    CHECK("... with no event dispatched", nevents == 0);
    CHECK("... and the data held never over the cap", p.data.len <= 1024);
    sse_free(&p);

    /* one endless line */
    sse_init(&p, 1024);
    rc = feed_forever(&p, "data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 1000000, &fed);
    CHECK("a line without an end stops the parse", rc == SSE_TOO_BIG);
    CHECK("... holding at most the cap and its slack",
          p.line.len <= 1024 + SSE_LINE_SLACK);
    sse_free(&p);

    /* comments and other fields hold nothing, however many */
    sse_init(&p, 1024);
    nevents = 0;
    rc = feed_forever(&p, ": keep-alive\nevent: x\nid: 1\n", 10000, &fed);
    CHECK("endless comment lines are fine", rc == SSE_OK && fed == 10000);
    rc = sse_feed(&p, "data: after\n\n", 13, collect, NULL);
    CHECK_STR("... and an event after them arrives", "after", nevents == 1 ? events[0] : "");
    sse_free(&p);

    /* exactly the cap passes, one byte more does not */
    sse_init(&p, 1024);
    nevents = 0;
    memcpy(event, "data: ", 6);
    memset(event + 6, 'a', 1024);
    memcpy(event + 6 + 1024, "\n\n", 3);
    rc = sse_feed(&p, event, strlen(event), collect, NULL);
    CHECK("an event of exactly the cap is dispatched", rc == SSE_OK && nevents == 1);
    memcpy(event + 6 + 1024, "a\n\n", 4);
    rc = sse_feed(&p, event, strlen(event), collect, NULL);
    CHECK("an event one byte over the cap is refused", rc == SSE_TOO_BIG && nevents == 1);
    sse_free(&p);

    /* the joining newlines count */
    sse_init(&p, 5);
    nevents = 0;
    const char *fits = "data: ab\ndata: cd\n\n", *over = "data: ab\ndata: cde\n\n";
    rc = sse_feed(&p, fits, strlen(fits), collect, NULL);
    CHECK_STR("two lines joined fit a cap of 5", "ab\ncd", nevents == 1 ? events[0] : "");
    rc = sse_feed(&p, over, strlen(over), collect, NULL);
    CHECK("... and 'ab\\ncde' does not", rc == SSE_TOO_BIG && nevents == 1);
    sse_free(&p);

    sse_init(&p, 1024);
    nevents = 0;
    rc = sse_feed(&p, "data: 1\n\ndata: 2\n\n", 18, stop_at_second, NULL);
    CHECK("a stopping callback is told apart from an event too big", rc == SSE_STOPPED);
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
    sse_init(&p, 4096);
    nevents = 0;
    int rc = sse_feed(&p, "data: 1\n\ndata: 2\n\ndata: 3\n\n", 27, stop_at_second, NULL);
    CHECK("callback can stop parsing", rc == -1 && nevents == 2);
    sse_free(&p);

    test_caps();
    return check_failed ? 1 : 0;
}
