/* job.c -- see job.h. */
#define _POSIX_C_SOURCE 200809L
#include "job.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "redis_argv.h"

void job_xadd_argv(struct job_argv *a, const struct keys *k, const struct job *j)
{
    a->argc = 0;
    ARGV_STR(a, "XADD");
    ARGV_STR(a, k->jobs);
    ARGV_STR(a, "*");
    ARGV_STR(a, "kind");
    ARGV_STR(a, j->kind == JOB_IMAGE ? "image" : "text");
    ARGV_STR(a, "content");
    ARGV_ADD(a, j->content ? j->content : "", j->content ? j->content_len : 0);
    ARGV_STR(a, "reply");
    ARGV_STR(a, j->reply);
    snprintf(a->ts, sizeof(a->ts), "%lld", j->ts ? j->ts : clock_wall_ms());
    ARGV_STR(a, "ts");
    ARGV_STR(a, a->ts);
    if (j->kind == JOB_IMAGE) {
        ARGV_STR(a, "image");
        ARGV_STR(a, j->image_key);
        ARGV_STR(a, "mime");
        ARGV_STR(a, j->mime);
    }
    if (j->user) {
        ARGV_STR(a, "user");
        ARGV_STR(a, j->user);
    }
    if (j->conversation) {
        ARGV_STR(a, "conv");
        ARGV_STR(a, j->conversation);
    }
    if (j->model) {
        ARGV_STR(a, "model");
        ARGV_STR(a, j->model);
    }
}

void job_image_argv(struct job_argv *a, const char *image_key, const void *bytes, size_t len,
                    long ttl)
{
    a->argc = 0;
    ARGV_STR(a, "SET");
    ARGV_STR(a, image_key);
    ARGV_ADD(a, bytes, len);
    ARGV_STR(a, "EX");
    snprintf(a->ttl, sizeof(a->ttl), "%ld", ttl);
    ARGV_STR(a, a->ttl);
}

int job_new_token(char out[33])
{
    unsigned char raw[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, raw, sizeof(raw));
    close(fd);
    if (n != (ssize_t)sizeof(raw))
        return -1;
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

int job_from_entry(struct job *j, const redisReply *entry)
{
    memset(j, 0, sizeof(*j));
    if (!entry || entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING ||
        entry->element[0]->len >= sizeof(j->id))
        return -1;
    memcpy(j->id, entry->element[0]->str, entry->element[0]->len);
    const redisReply *f = entry->element[1];
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2)
        return -1;
    const char *kind = NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *name = f->element[i], *val = f->element[i + 1];
        if (name->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING)
            return -1;
        if (strcmp(name->str, "kind") == 0) {
            kind = val->str;
        } else if (strcmp(name->str, "content") == 0) {
            j->content = val->str;
            j->content_len = val->len;
        } else if (strcmp(name->str, "reply") == 0) {
            j->reply = val->str;
        } else if (strcmp(name->str, "image") == 0) {
            j->image_key = val->str;
        } else if (strcmp(name->str, "mime") == 0) {
            j->mime = val->str;
        } else if (strcmp(name->str, "user") == 0) {
            j->user = val->str;
        } else if (strcmp(name->str, "model") == 0) {
            j->model = val->str;
        } else if (strcmp(name->str, "conv") == 0) {
            j->conversation = val->str;
        } else if (strcmp(name->str, "ts") == 0) {
            j->ts = atoll(val->str);
        }
    }
    if (!kind || !j->reply || !j->reply[0])
        return -1;
    if (strcmp(kind, "text") == 0) {
        j->kind = JOB_TEXT;
        return j->content && j->content_len ? 0 : -1;
    }
    if (strcmp(kind, "image") == 0) {
        j->kind = JOB_IMAGE;
        return j->image_key && j->mime ? 0 : -1;
    }
    return -1;
}
