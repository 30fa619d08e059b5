/* fuzz_job_entry.c -- libFuzzer harness: a Redis stream entry read as a job
 * (common/job.c job_from_entry). The input is raw RESP, parsed by hiredis'
 * own reader into the reply the worker would get. */
#include <assert.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <string.h>

#include "job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const redisReply *entry)
{
    struct job j;
    if (job_from_entry(&j, entry) != 0)
        return;
    assert(j.reply && j.reply[0]);
    assert(strlen(j.id) < sizeof(j.id));
    if (j.kind == JOB_TEXT)
        assert(j.content && j.content_len > 0);
    else
        assert(j.image_key && j.mime);
}

/* hiredis allocates an aggregate's elements up front and this version
 * (0.14) has no maxelements bound: "*2000000000" exhausts memory, in the
 * reader, not in job.c (and our Redis server is trusted). Skip such input. */
static int huge_aggregate(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!strchr("*%~>|", p[i]) || !p[i])
            continue;
        size_t digits = 0;
        long v = 0;
        for (size_t k = i + 1; k < n && p[k] >= '0' && p[k] <= '9' && digits < 12; k++, digits++)
            v = v * 10 + (p[k] - '0');
        if (v > 4096)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (huge_aggregate(data, size))
        return 0;
    redisReader *r = redisReaderCreate();
    if (!r)
        return 0;
    if (redisReaderFeed(r, (const char *)data, size) == REDIS_OK) {
        void *reply;
        for (int i = 0; i < 8; i++) {
            reply = NULL;
            if (redisReaderGetReply(r, &reply) != REDIS_OK || !reply)
                break;
            const redisReply *rep = reply;
            check(rep);
            /* an XREADGROUP-like reply holds entries deeper down */
            if (rep->type == REDIS_REPLY_ARRAY)
                for (size_t k = 0; k < rep->elements; k++)
                    check(rep->element[k]);
            freeReplyObject(reply);
        }
    }
    redisReaderFree(r);
    return 0;
}
