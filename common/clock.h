/* clock.h -- the project's one clock.
 *
 * Monotonic milliseconds for timeouts and intervals (never jumps), and the
 * wall clock for what crosses process boundaries (job and frame timestamps,
 * stream ids compared with Redis' own). */
#ifndef AIMSG_CLOCK_H
#define AIMSG_CLOCK_H

long long clock_ms(void);       /* monotonic, for deadlines */
long long clock_wall_ms(void);  /* ms since the epoch */
long long clock_wall_us(void);  /* µs since the epoch */

#endif
