/* clock.c -- see clock.h. */
#define _POSIX_C_SOURCE 200809L
#include "clock.h"

#include <time.h>

static long long read_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long clock_ms(void) { return read_us(CLOCK_MONOTONIC) / 1000; }
long long clock_wall_ms(void) { return read_us(CLOCK_REALTIME) / 1000; }
long long clock_wall_us(void) { return read_us(CLOCK_REALTIME); }
