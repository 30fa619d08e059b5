/* frame.c -- see frame.h. */
#define _POSIX_C_SOURCE 200809L
#include "frame.h"

#include <string.h>
#include <time.h>

long long frame_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int frame_chunk(struct buf *out, const char *id, long seq, const char *text, size_t len)
{
    buf_reset(out);
    return buf_puts(out, "{\"type\":\"text\",\"content\":") | buf_json_string(out, text, len) |
           buf_puts(out, ",\"id\":") | buf_json_string(out, id, strlen(id)) |
           buf_printf(out, ",\"seq\":%ld,\"ts\":%lld}", seq, frame_now_us());
}

int frame_done(struct buf *out, const char *id, long seq)
{
    buf_reset(out);
    return buf_puts(out, "{\"type\":\"done\",\"id\":") | buf_json_string(out, id, strlen(id)) |
           buf_printf(out, ",\"seq\":%ld,\"ts\":%lld}", seq, frame_now_us());
}

int frame_error(struct buf *out, const char *id, const char *message)
{
    buf_reset(out);
    int rc = buf_puts(out, "{\"type\":\"error\",\"content\":") |
             buf_json_string(out, message, strlen(message));
    if (id)
        rc |= buf_puts(out, ",\"id\":") | buf_json_string(out, id, strlen(id));
    return rc | buf_puts(out, "}");
}

int frame_queued(struct buf *out, const char *id)
{
    buf_reset(out);
    return buf_puts(out, "{\"type\":\"queued\",\"id\":") |
           buf_json_string(out, id, strlen(id)) | buf_puts(out, "}");
}
