/* test_query.c -- a request's query parameters (fcgi-api/query.c). */
#define TEST_NAME "query"
#include "check.h"
#include "../../fcgi-api/query.h"

int main(void)
{
    char v[16];
    CHECK("a parameter", query_param("limit=5&cursor=abc", "cursor", v, sizeof(v)) == 1 &&
                             !strcmp(v, "abc"));
    CHECK("... the first of two", query_param("day=1&day=2", "day", v, sizeof(v)) == 1 &&
                                      !strcmp(v, "1"));
    CHECK("... by its whole name", query_param("xlimit=1&limits=2", "limit", v, sizeof(v)) == 0);
    CHECK("... none in an empty query", query_param("", "limit", v, sizeof(v)) == 0);
    CHECK("a name alone is an empty value", query_param("a&limit", "limit", v, sizeof(v)) == 1 &&
                                                !strcmp(v, ""));
    CHECK("percent-encoding and + are decoded",
          query_param("c=a%2Fb%2bc+d", "c", v, sizeof(v)) == 1 && !strcmp(v, "a/b+c d"));
    CHECK("a bad escape is refused", query_param("c=a%2", "c", v, sizeof(v)) == -1 &&
                                         query_param("c=%zz", "c", v, sizeof(v)) == -1);
    CHECK("... %00 too", query_param("c=a%00b", "c", v, sizeof(v)) == -1);
    CHECK("a value that does not fit is refused",
          query_param("c=0123456789abcdef", "c", v, sizeof(v)) == -1 &&
              query_param("c=0123456789abcde", "c", v, sizeof(v)) == 1);
    return check_failed ? 1 : 0;
}
