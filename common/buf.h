/* buf.h -- a growable byte buffer, always NUL-terminated after len. */
#ifndef AIMSG_BUF_H
#define AIMSG_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len, cap;
};

#define BUF_INIT {NULL, 0, 0}

int buf_reserve(struct buf *b, size_t extra);     /* room for extra more bytes */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_json_string(struct buf *b, const char *s, size_t n); /* "..." escaped */
void buf_consume(struct buf *b, size_t n);        /* drop n bytes from the front */
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
