/* job.h -- a job: one question waiting for an answer in the jobs stream.
 *
 * Stream entry fields (docs/PROTOCOL.md):
 *   kind     "text" or "image"
 *   content  the question (may be empty for an image)
 *   reply    channel the answer frames are published on
 *   ts       enqueue time, ms since the epoch
 *   image    key holding the image bytes (image jobs only)
 *   mime     image type (image jobs only)
 *   user     who asked: "user:<sub>" (authentication on) or "addr:<ip>";
 *            the key of its quotas and, for a user, who owns the answer
 *   conv     the conversation it continues or starts (conversation.h)
 *   model    the model the client asked for (absent: the default, models.h)
 * The entry ID is the job id every frame of the answer carries. */
#ifndef AIMSG_JOB_H
#define AIMSG_JOB_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "keys.h"

enum job_kind { JOB_TEXT, JOB_IMAGE };

struct job {
    char id[48];
    enum job_kind kind;
    const char *content;
    size_t content_len;
    const char *reply;
    const char *image_key;  /* NULL for text jobs */
    const char *mime;
    const char *user;       /* NULL: none */
    const char *conversation; /* NULL: none (broadcasts) */
    const char *model;      /* NULL: the default */
    int conversation_new;   /* enqueueing: it starts the conversation */
    long long ts;
};

/* Arguments for redisCommandArgv / redisAsyncCommandArgv. */
#define JOB_ARGV_MAX 48
struct job_argv {
    int argc;
    const char *argv[JOB_ARGV_MAX];
    size_t argvlen[JOB_ARGV_MAX];
    char ts[24];
    char ttl[24];
};

/* XADD <jobs> * kind ... for the job (its id field is ignored). */
void job_xadd_argv(struct job_argv *a, const struct keys *k, const struct job *j);
/* SET <image_key> <bytes> EX <ttl>: store an image before queueing its job. */
void job_image_argv(struct job_argv *a, const char *image_key, const void *bytes,
                    size_t len, long ttl);
/* A fresh random token for an image key (32 hex characters). */
int job_new_token(char out[33]);

/* Reads a stream entry reply ([id, [field, value, ...]]) into j; the strings
 * point into the reply. Returns -1 when the entry is malformed. */
int job_from_entry(struct job *j, const redisReply *entry);

#endif
