/* check.h -- the unit tests' one assertion: prints PASS/FAIL lines that
 * tests/run.sh counts, and keeps going after a failure. */
#ifndef AIMSG_CHECK_H
#define AIMSG_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failed;

#define CHECK(name, cond)                                                              \
    do {                                                                               \
        if (cond) {                                                                    \
            printf("PASS %s: %s\n", TEST_NAME, name);                                  \
        } else {                                                                       \
            printf("FAIL %s: %s (%s:%d: %s)\n", TEST_NAME, name, __FILE__, __LINE__,   \
                   #cond);                                                             \
            check_failed++;                                                            \
        }                                                                              \
    } while (0)

#define CHECK_STR(name, expected, actual)                                              \
    do {                                                                               \
        const char *e_ = (expected), *a_ = (actual);                                   \
        if (a_ && strcmp(e_, a_) == 0) {                                               \
            printf("PASS %s: %s\n", TEST_NAME, name);                                  \
        } else {                                                                       \
            printf("FAIL %s: %s (expected [%s] got [%s])\n", TEST_NAME, name, e_,      \
                   a_ ? a_ : "(null)");                                                \
            check_failed++;                                                            \
        }                                                                              \
    } while (0)

#endif
