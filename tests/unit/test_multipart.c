/* test_multipart.c -- multipart/form-data parsing and its edge cases. */
#define TEST_NAME "multipart"
#include "check.h"
#include "../../fcgi-api/multipart.h"

static int parse(const char *body, size_t len, const char *boundary,
                 struct multipart_part *parts, const char **err)
{
    return multipart_parse(body, len, boundary, parts, 8, err);
}

int main(void)
{
    char b[128];
    CHECK("plain boundary",
          multipart_boundary("multipart/form-data; boundary=abc123", b, sizeof(b)) == 0 &&
              !strcmp(b, "abc123"));
    CHECK("quoted boundary with spaces and ;",
          multipart_boundary("multipart/form-data; charset=utf-8; boundary=\"a b;c\"", b,
                             sizeof(b)) == 0 && !strcmp(b, "a b;c"));
    CHECK("case-insensitive type and parameter",
          multipart_boundary("Multipart/Form-Data; BOUNDARY=x", b, sizeof(b)) == 0 &&
              !strcmp(b, "x"));
    CHECK("missing boundary", multipart_boundary("multipart/form-data", b, sizeof(b)) != 0);
    CHECK("not multipart", multipart_boundary("application/json", b, sizeof(b)) != 0);
    CHECK("empty content type", multipart_boundary("", b, sizeof(b)) != 0);

    struct multipart_part parts[8];
    const char *err = NULL;
    /* binary data with CRLF, a fake boundary prefix and NUL inside */
    static const char body[] =
        "preamble\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"content\"\r\n\r\n"
        "what is it?\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"image\"; filename=\"a \\\"b\\\".png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
        "\x89PNG\r\n\x1a\n\r\n--XyZnot\0end\r\n"
        "--XyZ--\r\n";
    int n = parse(body, sizeof(body) - 1, "XyZ", parts, &err);
    CHECK("two parts after a preamble", n == 2);
    const struct multipart_part *q = multipart_find(parts, n, "content");
    const struct multipart_part *img = multipart_find(parts, n, "image");
    CHECK("text field found", q && q->len == 11 && !memcmp(q->data, "what is it?", 11));
    CHECK("file field found", img != NULL);
    CHECK("file keeps CRLF, NUL and boundary-like bytes",
          img && img->len == 22 && !memcmp(img->data + 8, "\r\n--XyZnot\0end", 14));
    CHECK("escaped quotes in filename", img && !strcmp(img->filename, "a \"b\".png"));
    CHECK("part content type", img && !strcmp(img->content_type, "image/png"));
    CHECK("missing field is NULL", multipart_find(parts, n, "nope") == NULL);

    static const char truncated[] =
        "--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc";
    CHECK("no closing boundary is an error",
          parse(truncated, sizeof(truncated) - 1, "b", parts, &err) < 0 && err);
    static const char noheaders[] = "--b\r\nContent-Disposition: form-data; name=\"x\"";
    CHECK("truncated headers are an error",
          parse(noheaders, sizeof(noheaders) - 1, "b", parts, &err) < 0);
    CHECK("body without boundary is an error", parse("hello", 5, "b", parts, &err) < 0);
    static const char empty[] = "--b--\r\n";
    CHECK("no parts at all", parse(empty, sizeof(empty) - 1, "b", parts, &err) == 0);
    static const char unquoted[] =
        "--b\r\ncontent-disposition: form-data; name=image\r\n\r\nxy\r\n--b--";
    n = parse(unquoted, sizeof(unquoted) - 1, "b", parts, &err);
    CHECK("unquoted name and lower-case header", n == 1 && !strcmp(parts[0].name, "image") &&
                                                     parts[0].len == 2);
    char many[4096] = "";
    for (int i = 0; i < 10; i++)
        strcat(many, "--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n");
    strcat(many, "--b--");
    CHECK("too many parts is an error", parse(many, strlen(many), "b", parts, &err) < 0);
    return check_failed ? 1 : 0;
}
