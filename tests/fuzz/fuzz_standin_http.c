/* fuzz_standin_http.c -- libFuzzer harness: the AI stand-in's HTTP request
 * head parser (ai-standin/http.c http_parse_head, a pure function). The
 * input is given the "\r\n\r\n" its caller guarantees. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../ai-standin/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HTTP_MAX_HEAD)
        return 0;
    char *head = malloc(size + 4);
    if (!head)
        return 0;
    memcpy(head, data, size);
    memcpy(head + size, "\r\n\r\n", 4);
    struct http_request r;
    int status = http_parse_head(&r, head, size + 4);
    assert(status == 0 || status == 400 || status == 413 || status == 417 || status == 505);
    if (status == 0) {
        assert(r.method[0] && strlen(r.method) < sizeof(r.method));
        assert(strlen(r.path) < sizeof(r.path));
        assert(!r.has_length || r.content_length <= HTTP_MAX_BODY);
        assert(!r.auth || (r.auth >= head && r.auth + r.auth_len <= head + size + 4));
    }
    free(head);
    return 0;
}
