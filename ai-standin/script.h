/* script.h -- the stand-in's deterministic answer to a chat-completions
 * request: validates the JSON body, finds the question (the last user
 * message), strips and interprets the @@directives in it, and splits the
 * answer into tokens. Knows nothing about HTTP or sockets. */
#ifndef AIMSG_STANDIN_SCRIPT_H
#define AIMSG_STANDIN_SCRIPT_H

#include <limits.h>
#include <stddef.h>

#include "buf.h"

#define ANSWER_MAX_TOKENS 10000000 /* cap for @@tokens=N */
#define ANSWER_ENDLESS ((size_t)LONG_MAX) /* ntokens of @@endless */

/* What the @@directives in the question asked for; -1 means "not given". */
struct directives {
    long delay_ms;      /* @@delay=MS: ms between tokens */
    int fail_code;      /* @@fail=CODE[*N]: 0 = none */
    long fail_times;    /* N of @@fail=CODE*N; -1 = fail every time */
    char fail_for[64];  /* @@failfor=MODEL: @@fail only for requests for that model */
    long cut;           /* @@cut=N: close abruptly after N tokens */
    long malformed;     /* @@malformed=N: bad JSON event after N tokens */
    long error;         /* @@error=N: in-stream error event after N tokens */
    long tokens;        /* @@tokens=N: answer "tok0 tok1 ..." */
    int hang;           /* @@hang: never answer */
    int endless;        /* @@endless: "tok0 tok1 ..." for ever (streamed only) */
    int plain;          /* @@plain: one JSON completion even when a stream was asked */
    int no_stream_options; /* @@nostreamoptions: a request with stream_options is a 400
                            * (OpenAI's error body); @@nostreamoptions=422: a 422 with a
                            * pydantic-style body (FastAPI servers) */
};

struct answer {
    char *model;
    int stream;
    int include_usage;          /* stream_options.include_usage */
    int has_stream_options;     /* stream_options is in the request at all */
    struct directives dir;
    char *question;             /* raw question text, directives included */
    struct buf text;            /* the answer, unless dir.tokens >= 0 */
    size_t *ends;               /* ends[i]: offset in text just past token i */
    size_t ntokens;
    size_t prompt_tokens;
};

/* Fills a from a request body. Returns 0, or -1 with a message for the
 * client (400 invalid_request_error) in err. a must be freed either way. */
int answer_parse(struct answer *a, const char *body, size_t len, struct buf *err);

/* Token i (< a->ntokens) as bytes, not NUL-terminated. scratch holds the
 * synthetic tokens of @@tokens=N. */
const char *answer_token(const struct answer *a, size_t i, char scratch[32], size_t *len);

/* Appends the whole answer (all tokens) to out. Returns 0, or -1 (memory, or
 * an @@endless answer, which has no whole). */
int answer_text(const struct answer *a, struct buf *out);

void answer_free(struct answer *a);

/* Remembers how often each @@fail=CODE*N question was served, so a client's
 * retries eventually succeed. Bounded; the oldest entry is forgotten first. */
#define FAIL_TABLE_SIZE 1024

struct fail_table {
    struct {
        char *question;
        long served;
    } entry[FAIL_TABLE_SIZE];
    size_t next;                /* slot to reuse when the table is full */
};

/* 1 when this request must fail with a->dir.fail_code, else 0. */
int answer_should_fail(struct fail_table *t, const struct answer *a);
void fail_table_free(struct fail_table *t);

#endif
