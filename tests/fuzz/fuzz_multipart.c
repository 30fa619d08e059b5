/* fuzz_multipart.c -- libFuzzer harness: POST /api/image's multipart body.
 * Input: a Content-Type line, '\n', then the body. Checks that every part
 * lies inside the body and that the question rule agrees with jansson on
 * what is UTF-8. */
#include <assert.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "../../fcgi-api/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_question(const struct multipart_part *q)
{
    if (!q)
        return;
    /* jansson's own UTF-8 check (json_stringn) must agree with ours */
    json_t *s = json_stringn(q->data, q->len);
    assert((s != NULL) == message_utf8_valid(q->data, q->len));
    json_decref(s);
    message_check_question(q->data, q->len, 65536);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    size_t ctlen = nl ? (size_t)(nl - (const char *)data) : 0;
    char *ctype = malloc(ctlen + 1);
    if (!ctype)
        return 0;
    memcpy(ctype, data, ctlen);
    ctype[ctlen] = '\0';
    char boundary[128];
    if (multipart_boundary(ctype, boundary, sizeof(boundary)) != 0)
        strcpy(boundary, "XyZ");
    free(ctype);

    /* the body in a buffer of its own size, so an overread is caught */
    size_t off = nl ? ctlen + 1 : 0, len = size - off;
    char *body = malloc(len ? len : 1);
    if (!body)
        return 0;
    memcpy(body, data + off, len);
    struct multipart_part parts[16];
    const char *err = NULL;
    int n = multipart_parse(body, len, boundary, parts, 16, &err);
    assert(n >= 0 || err != NULL);
    for (int i = 0; i < n; i++) {
        assert(parts[i].data >= body && parts[i].data + parts[i].len <= body + len);
        assert(strlen(parts[i].name) < sizeof(parts[i].name));
    }
    if (n > 0) {
        check_question(multipart_find(parts, n, "content"));
        const struct multipart_part *img = multipart_find(parts, n, "image");
        const char *mime;
        if (img)
            message_check_image(img->data, img->len, 1 << 20, &mime);
    }
    free(body);
    return 0;
}
