/* fuzz_standin_body.c -- libFuzzer harness: the AI stand-in's request body
 * (ai-standin/script.c answer_parse: chat-completions JSON, the question and
 * its @@directives), then every token of the answer it builds. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "../../ai-standin/script.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fail_table fails;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct answer a;
    struct buf err = BUF_INIT;
    if (answer_parse(&a, (const char *)data, size, &err) == 0) {
        /* @@tokens=N and @@endless answers are synthetic: walking millions
         * is no use */
        size_t n = a.ntokens < 1000 ? a.ntokens : 1000;
        char scratch[32];
        for (size_t i = 0; i < n; i++) {
            size_t len;
            const char *t = answer_token(&a, i, scratch, &len);
            assert(t && (len > 0 || a.dir.tokens >= 0 || a.dir.endless));
        }
        if (a.dir.tokens < 0 && !a.dir.endless) { /* a text to build whole */
            struct buf text = BUF_INIT;
            assert(answer_text(&a, &text) == 0);
            buf_free(&text);
        }
        answer_should_fail(&fails, &a);
    }
    answer_free(&a);
    buf_free(&err);
    return 0;
}
