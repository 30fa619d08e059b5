/* fuzz_sse.c -- libFuzzer harness: the worker's SSE parser (worker/sse.c).
 * Input: 4 bytes seeding the split points, then the stream. The stream is
 * parsed whole and again fed in random splits; both must give the same
 * events (the parser must not care where the network cut the bytes). */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "../../worker/sse.h"

/* small, so that streams over it are tried too */
#define FUZZ_MAX_EVENT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Records each event as <length>:<data>. */
static int record(void *ctx, const char *d, size_t len)
{
    struct buf *out = ctx;
    if (buf_printf(out, "%zu:", len) != 0 || buf_append(out, d, len) != 0)
        return -1;
    return 0;
}

static int parse(const char *p, size_t n, uint32_t seed, struct buf *out)
{
    struct sse s;
    sse_init(&s, FUZZ_MAX_EVENT);
    enum sse_status rc = SSE_OK;
    size_t i = 0;
    while (rc == SSE_OK && i < n) {
        size_t chunk = n - i;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            chunk = 1 + (seed >> 16) % 17;
            if (chunk > n - i)
                chunk = n - i;
        }
        rc = sse_feed(&s, p + i, chunk, record, out);
        i += chunk;
    }
    sse_free(&s);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint32_t seed;
    memcpy(&seed, data, 4);
    const char *p = (const char *)data + 4;
    size_t n = size - 4;
    struct buf whole = BUF_INIT, split = BUF_INIT;
    int rc1 = parse(p, n, 0, &whole);
    int rc2 = parse(p, n, seed | 1, &split);
    assert(rc1 == rc2);
    assert(whole.len == split.len && (whole.len == 0 || memcmp(whole.data, split.data, whole.len) == 0));
    buf_free(&whole);
    buf_free(&split);
    return 0;
}
