/* fuzz_query.c -- libFuzzer harness: a request's query string
 * (fcgi-api/query.c) and the GET /api/usage parameters read from it
 * (usage_page_limit, usage_page_cursor, usage_page_day in common/usage.c).
 * The input is the query string itself. */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usage.h"
#include "../../fcgi-api/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *query = malloc(size + 1);
    assert(query);
    memcpy(query, data, size);
    query[size] = '\0';
    static const char *names[] = {"limit", "cursor", "day"};
    char value[64];
    struct usage_page page;
    usage_page_init(&page);
    for (size_t i = 0; i < 3; i++) {
        int rc = query_param(query, names[i], value, sizeof(value));
        assert(rc >= -1 && rc <= 1);
        if (rc != 1)
            continue;
        assert(strlen(value) < sizeof(value));
        const char *why = i == 0   ? usage_page_limit(&page, value)
                          : i == 1 ? usage_page_cursor(&page, value)
                                   : usage_page_day(&page, value);
        if (!why && i == 0)
            assert(page.limit >= 1 && page.limit <= USAGE_LIMIT_MAX);
    }
    assert(strlen(page.day) <= USAGE_DAY_LEN && strlen(page.after_member) < sizeof(page.after_member));
    free(query);
    return 0;
}
