/* fuzz_proxy.c -- libFuzzer harness: X-Forwarded-For and the peer address
 * (common/proxy.c), Origin headers and allowlist items (common/origin.c).
 * The input is "peer\nx-forwarded-for\norigin"; missing parts are empty. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "origin.h"
#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct proxy_nets nets;
static char *trusted_items[] = {"127.0.0.1", "::1", "10.0.0.0/8", "fd00::/8", "192.168.1.128/25"};
static char *origin_items[] = {"https://a.example", "*.example.com", "http://[::1]:8080", "null",
                               "https://*.b.example:8443"};
static const struct config_list origins = {5, origin_items};

/* The next '\n'-terminated part of the input, as a string (freed by the caller). */
static char *next_part(const uint8_t **data, size_t *size)
{
    const uint8_t *nl = memchr(*data, '\n', *size);
    size_t len = nl ? (size_t)(nl - *data) : *size;
    char *s = malloc(len + 1);
    assert(s);
    memcpy(s, *data, len);
    s[len] = '\0';
    *data += nl ? len + 1 : len;
    *size -= nl ? len + 1 : len;
    return s;
}

static int is_ip(const char *s)
{
    unsigned char a[16];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static void check_proxy(const char *peer, const char *xff)
{
    char out[PROXY_ADDR_MAX], again[PROXY_ADDR_MAX], alone[PROXY_ADDR_MAX];
    int rc = proxy_client_address(&nets, peer, xff, out, sizeof(out));
    if (!is_ip(peer))
        return;
    /* an address always comes out as an address, in its normal form */
    assert(rc == 0 && is_ip(out));
    assert(proxy_client_address(&nets, out, NULL, again, sizeof(again)) == 0);
    assert(strcmp(out, again) == 0);
    /* an untrusted peer's header is never looked at */
    if (!proxy_trusted(&nets, peer)) {
        assert(proxy_client_address(&nets, peer, NULL, alone, sizeof(alone)) == 0);
        assert(strcmp(out, alone) == 0);
    }
    struct proxy_net net;
    (void)proxy_net_parse(peer, &net);
    (void)proxy_net_parse(xff, &net);
}

static void check_origin(const char *origin)
{
    struct config_list empty = {0, NULL};
    assert(origin_allowed(&empty, origin) == 1);
    (void)origin_allowed(&origins, origin);
    /* a valid exact item admits the origin it names */
    if (origin_pattern_check(origin) == NULL && !strchr(origin, '*') &&
        strcmp(origin, "null") != 0) {
        char *one[] = {(char *)origin};
        struct config_list l = {1, one};
        assert(origin_allowed(&l, origin) == 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!nets.nets) {
        struct config_list l = {5, trusted_items};
        char err[256];
        if (proxy_nets_init(&nets, &l, err, sizeof(err)) != 0)
            abort();
    }
    char *peer = next_part(&data, &size);
    char *xff = next_part(&data, &size);
    char *origin = next_part(&data, &size);
    check_proxy(peer, xff);
    check_origin(origin);
    free(peer);
    free(xff);
    free(origin);
    return 0;
}
