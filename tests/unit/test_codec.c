/* test_codec.c -- base64, image recognition, JSON frames, the job schema. */
#define TEST_NAME "codec"
#include "check.h"
#include "base64.h"
#include "frame.h"
#include "image.h"
#include "job.h"
#include "keys.h"

int main(void)
{
    struct buf b = BUF_INIT;
    base64_encode(&b, (const unsigned char *)"hello!?", 7);
    CHECK_STR("base64 encode with padding", "aGVsbG8hPw==", b.data);
    buf_reset(&b);
    CHECK("base64 decode", base64_decode(&b, "aGVsbG8hPw==", 12) == 0 && b.len == 7 &&
                               !memcmp(b.data, "hello!?", 7));
    buf_reset(&b);
    CHECK("base64 decode skips whitespace and allows no padding",
          base64_decode(&b, "aGVs\nbG8hPw", 11) == 0 && b.len == 7);
    buf_reset(&b);
    CHECK("base64 rejects bad characters", base64_decode(&b, "aGV*bG8=", 8) != 0);
    buf_reset(&b);
    CHECK("base64 rejects a lone trailing character", base64_decode(&b, "aGVsb", 5) != 0);
    buf_reset(&b);
    CHECK("base64 rejects data after padding", base64_decode(&b, "aG==aG==", 8) != 0);
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    struct buf enc = BUF_INIT, dec = BUF_INIT;
    base64_encode(&enc, all, 256);
    CHECK("base64 round trip of every byte",
          base64_decode(&dec, enc.data, enc.len) == 0 && dec.len == 256 && !memcmp(dec.data, all, 256));
    buf_free(&enc);
    buf_free(&dec);

    CHECK_STR("png magic", "image/png", image_mime((const unsigned char *)"\x89PNG\r\n\x1a\n..", 10));
    CHECK_STR("jpeg magic", "image/jpeg", image_mime((const unsigned char *)"\xff\xd8\xff\xe0", 4));
    CHECK_STR("gif magic", "image/gif", image_mime((const unsigned char *)"GIF89a..", 8));
    CHECK_STR("webp magic", "image/webp", image_mime((const unsigned char *)"RIFF\0\0\0\0WEBPVP8 ", 16));
    CHECK("text is not an image", image_mime((const unsigned char *)"hello world!", 12) == NULL);
    CHECK("truncated png is not an image", image_mime((const unsigned char *)"\x89PNG", 4) == NULL);

    buf_reset(&b);
    frame_chunk(&b, "1-0", 3, "a \"quoted\"\nline\x01", 16);
    CHECK("chunk frame escapes JSON",
          strstr(b.data, "{\"type\":\"text\",\"content\":\"a \\\"quoted\\\"\\nline\\u0001\",\"id\":\"1-0\",\"seq\":3,\"ts\":") == b.data);
    frame_error(&b, NULL, "bad");
    CHECK_STR("error frame without id", "{\"type\":\"error\",\"content\":\"bad\"}", b.data);
    frame_done(&b, "7-1", 4);
    CHECK("done frame", strstr(b.data, "{\"type\":\"done\",\"id\":\"7-1\",\"seq\":4,") == b.data);
    buf_free(&b);

    struct keys k;
    keys_init(&k, "p:");
    CHECK_STR("jobs key", "p:jobs", k.jobs);
    char ch[128];
    keys_connection(&k, "host-1", 42, ch, sizeof(ch));
    CHECK_STR("connection channel", "p:out:host-1:42", ch);

    struct job j = {.kind = JOB_IMAGE, .content = "q", .content_len = 1, .reply = "p:out:all",
                    .image_key = "p:image:x", .mime = "image/png", .ts = 5};
    struct job_argv a;
    job_xadd_argv(&a, &k, &j);
    CHECK("xadd argv has every field", a.argc == 15 && !strcmp(a.argv[1], "p:jobs") &&
                                           !strcmp(a.argv[12], "p:image:x"));
    /* build a reply as Redis would return the entry, and read it back */
    redisReply *fields[12], f, entry, id, *pair[2];
    redisReply vals[12];
    const char *kv[] = {"kind", "image", "content", "q", "reply", "p:out:all",
                        "ts", "5", "image", "p:image:x", "mime", "image/png"};
    for (int i = 0; i < 12; i++) {
        memset(&vals[i], 0, sizeof(vals[i]));
        vals[i].type = REDIS_REPLY_STRING;
        vals[i].str = (char *)kv[i];
        vals[i].len = strlen(kv[i]);
        fields[i] = &vals[i];
    }
    memset(&f, 0, sizeof(f));
    f.type = REDIS_REPLY_ARRAY;
    f.elements = 12;
    f.element = fields;
    memset(&id, 0, sizeof(id));
    id.type = REDIS_REPLY_STRING;
    id.str = "9-0";
    id.len = 3;
    pair[0] = &id;
    pair[1] = &f;
    memset(&entry, 0, sizeof(entry));
    entry.type = REDIS_REPLY_ARRAY;
    entry.elements = 2;
    entry.element = pair;
    struct job back;
    CHECK("job entry parses", job_from_entry(&back, &entry) == 0);
    CHECK("job entry fields", back.kind == JOB_IMAGE && !strcmp(back.id, "9-0") &&
                                  !strcmp(back.mime, "image/png") && back.ts == 5);
    vals[1].str = "video";
    vals[1].len = 5;
    CHECK("unknown kind is rejected", job_from_entry(&back, &entry) != 0);
    return check_failed ? 1 : 0;
}
