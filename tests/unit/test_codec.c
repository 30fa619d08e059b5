/* test_codec.c -- base64, image recognition, JSON frames, the job schema. */
#define TEST_NAME "codec"
#include "check.h"
#include "answer.h"
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
          strstr(b.data, "{\"type\":\"text\",\"id\":\"1-0\",\"seq\":3,\"content\":\"a \\\"quoted\\\"\\nline\\u0001\",\"ts\":") == b.data);
    struct frame_head h;
    CHECK("chunk head is read", frame_peek(b.data, b.len, &h) == 0 && !strcmp(h.type, "text") &&
                                    !strcmp(h.id, "1-0") && h.seq == 3 && !frame_is_final(&h));
    CHECK("seq stands where the head says", h.seq_end == h.seq_at + 1 && b.data[h.seq_at] == '3');
    frame_reject(&b, "bad");
    CHECK_STR("error frame about a client's message", "{\"type\":\"error\",\"content\":\"bad\"}", b.data);
    CHECK("it is no answer frame", frame_peek(b.data, b.len, &h) != 0);
    frame_error(&b, "7-1", 12, "failed");
    CHECK_STR("error frame of an answer", "{\"type\":\"error\",\"id\":\"7-1\",\"seq\":12,\"content\":\"failed\"}", b.data);
    CHECK("it ends the answer", frame_peek(b.data, b.len, &h) == 0 && frame_is_final(&h) && h.seq == 12);
    frame_done(&b, "7-1", 4);
    CHECK("done frame", strstr(b.data, "{\"type\":\"done\",\"id\":\"7-1\",\"seq\":4,") == b.data);
    CHECK("done ends the answer", frame_peek(b.data, b.len, &h) == 0 && frame_is_final(&h));
    CHECK("a truncated head is not read", frame_peek(b.data, 22, &h) != 0);
    CHECK("an id with an escape is not read",
          frame_peek("{\"type\":\"text\",\"id\":\"a\\\"\",\"seq\":1}", 33, &h) != 0);
    CHECK("a frame in another order is not read",
          frame_peek("{\"type\":\"text\",\"content\":\"x\",\"id\":\"f\",\"seq\":1}", 44, &h) != 0);

    struct keys k;
    keys_init(&k, "p:");
    CHECK_STR("jobs key", "p:jobs", k.jobs);
    char ch[128], conns[128];
    keys_connections(&k, "host-1", "ab12", conns, sizeof(conns));
    keys_connection(conns, 42, ch, sizeof(ch));
    CHECK_STR("connection channel names instance, run and connection", "p:out:host-1:ab12:42", ch);
    CHECK("connection of a channel", keys_connection_of(conns, ch) == 42);
    CHECK("another run's channel is not ours", keys_connection_of(conns, "p:out:host-1:ab13:42") == 0);
    CHECK("a channel without a number is not a connection", keys_connection_of(conns, "p:out:host-1:ab12:ping") == 0);
    keys_answer(&k, "5-1", ch, sizeof(ch));
    CHECK_STR("answer history key", "p:answer:5-1", ch);
    CHECK_STR("answers index key", "p:answers", k.answers);

    frame_chunk(&b, "5-1", 17, "hi", 2);
    struct answer_write w;
    struct script sc;
    script_init(&sc, answer_write_lua);
    redisReply sha = {.type = REDIS_REPLY_STRING,
                      .str = (char *)"0123456789abcdef0123456789abcdef01234567", .len = 40};
    CHECK("answer write argv, the script not loaded yet: EVAL <its text>",
          answer_write_argv(&w, &sc, &k, "p:out:all", b.data, b.len, 0, "wr", 60, 100) == 0 &&
              w.argc == 29 && !strcmp(w.argv[0], "EVAL") && w.argv[1] == answer_write_lua);
    script_loaded(&sc, &sha);
    CHECK("answer write argv, loaded: EVALSHA <sha>",
          answer_write_argv(&w, &sc, &k, "p:out:all", b.data, b.len, 0, "wr", 60, 100) == 0 &&
              w.argc == 29 && !strcmp(w.argv[0], "EVALSHA") && !strcmp(w.argv[1], sha.str) &&
              !strcmp(w.argv[2], "4"));
    CHECK("by default nothing is counted", !strcmp(w.argv[24], ""));
    struct usage u = {12, 34};
    CHECK("a done frame counts its usage for the member and day",
          answer_write_usage(&w, &k, "2026-12-02", "user:alice", &u, 86400) == 0 &&
              !strcmp(w.argv[24], "p:usage:2026-12-02") && !strcmp(w.argv[25], "user:alice") &&
              !strcmp(w.argv[26], "12") && !strcmp(w.argv[27], "34") &&
              !strcmp(w.argv[28], "86400000"));
    u = USAGE_UNKNOWN;
    CHECK("... no tokens when the model reported none",
          answer_write_usage(&w, &k, "2026-12-02", "anonymous", &u, 60) == 0 &&
              !strcmp(w.argv[26], "0") && !strcmp(w.argv[27], "0"));
    CHECK("it names the keys", !strcmp(w.argv[3], "p:answer:5-1") && !strcmp(w.argv[4], "p:out:all") &&
                                  !strcmp(w.argv[5], "p:answers") && !strcmp(w.argv[6], "p:jobs"));
    CHECK("the frame is split around its seq",
          !strcmp(w.argv[7], "17") && w.argvlen[8] + 2 + w.argvlen[9] == b.len &&
          !memcmp(w.argv[8], b.data, w.argvlen[8]) && !memcmp(w.argv[9], b.data + w.argvlen[8] + 2, w.argvlen[9]));
    CHECK("job id, ttl and finality", w.argvlen[13] == 3 && !memcmp(w.argv[13], "5-1", 3) &&
                                          !strcmp(w.argv[12], "60000") && !strcmp(w.argv[11], "0"));
    CHECK("the in-flight set prefix, no owner to check, nobody to tell",
          !strcmp(w.argv[17], "p:inflight:") && !strcmp(w.argv[18], "") && !strcmp(w.argv[19], ""));
    answer_write_argv(&w, &sc, &k, "p:out:all", b.data, b.len, 1, "wr", 60, 100);
    CHECK("appending leaves the seq to the script", w.argvlen[7] == 0);
    struct buf cf = BUF_INIT;
    CHECK("a cancel names the owner it requires",
          answer_cancel_argv(&w, &k, "5-1", "p:inbox:alice", &cf, 60, 100) == 0 &&
              !strcmp(w.argv[18], "p:inbox:alice") && !strcmp(w.argv[4], "") &&
              !strcmp(w.argv[19], "p:cancels"));
    buf_free(&cf);
    CHECK("a frame without a head is refused",
          answer_write_argv(&w, NULL, &k, "c", "{\"type\":\"error\"}", 16, 0, "wr", 60, 100) != 0);
    char start[32];
    answer_range_start(-1, start, sizeof(start));
    CHECK_STR("history read after seq -1 starts at seq 0", "0-1", start);
    buf_free(&b);

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
