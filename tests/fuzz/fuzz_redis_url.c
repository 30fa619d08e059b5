/* fuzz_redis_url.c -- libFuzzer harness: redis_url (common/redis_conn.c
 * redis_addr_parse, sentinel:// in common/redis_sentinel.c, and
 * redis_url_redacted). */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    if (!url)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    struct redis_addr a;
    char err[128] = "";
    if (redis_addr_parse(&a, url, err, sizeof(err)) == 0) {
        assert(a.nsentinels >= 0 && a.nsentinels <= REDIS_MAX_SENTINELS);
        assert(a.nsentinels ? a.master_name[0] && !a.host[0] : a.host[0] != '\0');
        assert(strlen(a.host) < sizeof(a.host));
        assert(strlen(a.master_name) < sizeof(a.master_name));
        assert(strlen(a.sentinel_password) < sizeof(a.sentinel_password));
        for (int i = 0; i < a.nsentinels; i++)
            assert(a.sentinels[i].host[0] && a.sentinels[i].port >= 1 &&
                   a.sentinels[i].port <= 65535);
        assert(strlen(a.password) < sizeof(a.password));
        assert(a.is_unix || (a.port >= 1 && a.port <= 65535));
        assert(a.db >= 0);
    } else {
        assert(err[0]);
    }
    char shown[64];
    assert(strlen(redis_url_redacted(url, shown, sizeof(shown))) < sizeof(shown));
    free(url);
    return 0;
}
