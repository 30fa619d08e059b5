/* test_decimal.c -- numbers from outside input: digits only, bounded. */
#define _POSIX_C_SOURCE 200809L
#define TEST_NAME "decimal"
#include "check.h"
#include "decimal.h"

#include <limits.h>
#include <string.h>

static long parsed(const char *s, long max)
{
    long v = -7;
    return decimal_parse(s, strlen(s), max, &v) == 0 ? v : -1;
}

int main(void)
{
    CHECK("0", parsed("0", 10) == 0);
    CHECK("the bound itself", parsed("65535", 65535) == 65535);
    CHECK("over the bound", parsed("65536", 65535) == -1);
    CHECK("leading zeros are digits", parsed("0012", 100) == 12);
    CHECK("empty", parsed("", 10) == -1);
    CHECK("a sign", parsed("-1", 10) == -1 && parsed("+1", 10) == -1);
    CHECK("spaces", parsed(" 1", 10) == -1 && parsed("1 ", 10) == -1);
    CHECK("not a digit inside", parsed("1x2", 1000) == -1);
    CHECK("LONG_MAX as the bound", parsed("9223372036854775807", LONG_MAX) == LONG_MAX);
    CHECK("past LONG_MAX: refused, no overflow", parsed("9223372036854775808", LONG_MAX) == -1);
    CHECK("many digits", parsed("99999999999999999999999", LONG_MAX) == -1);
    long v = 5;
    CHECK("only the n bytes given", decimal_parse("123abc", 3, 1000, &v) == 0 && v == 123);
    CHECK("nothing written on refusal", decimal_parse("x", 1, 10, &v) == -1 && v == 123);
    return check_failed ? 1 : 0;
}
