/* test_origin.c -- the Origin allowlist: exact origins, default ports,
 * wildcards and the tricks a hostile page could try. */
#define _POSIX_C_SOURCE 200809L
#define TEST_NAME "origin"
#include "check.h"
#include "origin.h"

static struct config_list list_of(char **items, size_t n)
{
    struct config_list l = {n, items};
    return l;
}

#define LIST(...)                                                                      \
    list_of((char *[]){__VA_ARGS__}, sizeof((char *[]){__VA_ARGS__}) / sizeof(char *))

#define ALLOWED(name, list, origin) CHECK(name, origin_allowed(&(list), origin) == 1)
#define REFUSED(name, list, origin) CHECK(name, origin_allowed(&(list), origin) == 0)

static void test_empty_list(void)
{
    struct config_list none = {0, NULL};
    ALLOWED("empty list: any origin", none, "https://evil.net");
    ALLOWED("empty list: garbage", none, "not an origin");
    ALLOWED("empty list: null", none, "null");
    ALLOWED("empty list: no Origin", none, NULL);
    CHECK("NULL list: any origin", origin_allowed(NULL, "https://evil.net") == 1);
    struct config_list star = LIST("*");
    ALLOWED("*: any origin", star, "https://evil.net");
    ALLOWED("*: null", star, "null");
}

static void test_exact(void)
{
    struct config_list l = LIST("https://a.com");
    ALLOWED("same origin", l, "https://a.com");
    ALLOWED("no Origin header", l, NULL);
    ALLOWED("empty Origin header", l, "");
    ALLOWED("scheme and host case-insensitive", l, "HTTPS://A.Com");
    ALLOWED("default port written out", l, "https://a.com:443");
    ALLOWED("one trailing dot", l, "https://a.com.");
    REFUSED("two trailing dots", l, "https://a.com..");
    REFUSED("other scheme", l, "http://a.com");
    REFUSED("other port", l, "https://a.com:8443");
    REFUSED("http default port is not https's", l, "https://a.com:80");
    REFUSED("subdomain", l, "https://b.a.com");
    REFUSED("suffix attack", l, "https://a.com.evil.net");
    REFUSED("prefix attack", l, "https://evila.com");
    REFUSED("userinfo: a.com@evil.net", l, "https://a.com@evil.net");
    REFUSED("userinfo: evil.net@a.com", l, "https://evil.net@a.com");
    REFUSED("userinfo with password", l, "https://a.com:x@evil.net");
    REFUSED("trailing slash", l, "https://a.com/");
    REFUSED("path", l, "https://a.com/x");
    REFUSED("query", l, "https://a.com?x");
    REFUSED("leading space", l, " https://a.com");
    REFUSED("trailing space", l, "https://a.com ");
    REFUSED("empty port", l, "https://a.com:");
    REFUSED("port out of range", l, "https://a.com:70000");
    REFUSED("null is not listed", l, "null");
    REFUSED("ws scheme", l, "wss://a.com");
    REFUSED("no scheme", l, "a.com");
    REFUSED("percent-encoded host", l, "https://a%2ecom");
    REFUSED("empty label", l, "https://.a.com");

    struct config_list ports = LIST("http://a.com:80", "https://b.com:443", "http://c.com:8080");
    ALLOWED("listed :80 matches http without port", ports, "http://a.com");
    ALLOWED("listed :443 matches https without port", ports, "https://b.com");
    ALLOWED("explicit port", ports, "http://c.com:8080");
    REFUSED("explicit port, default given", ports, "http://c.com");
    REFUSED("listed https :443, http given", ports, "http://b.com:443");

    struct config_list upper = LIST("HTTPS://A.COM.");
    ALLOWED("list item case and trailing dot", upper, "https://a.com");

    struct config_list local = LIST("http://localhost:8080", "http://127.0.0.1:8080");
    ALLOWED("localhost", local, "http://localhost:8080");
    ALLOWED("IPv4 host", local, "http://127.0.0.1:8080");
    REFUSED("IPv4 host, other port", local, "http://127.0.0.1:8081");
    REFUSED("sub-label of localhost", local, "http://evil.localhost:8080");

    char longer[700];
    memset(longer, 'a', sizeof(longer));
    memcpy(longer, "https://", 8);
    longer[sizeof(longer) - 1] = '\0';
    REFUSED("very long origin", l, longer);
}

static void test_ipv6(void)
{
    struct config_list l = LIST("http://[::1]:8080");
    ALLOWED("IPv6 origin", l, "http://[::1]:8080");
    ALLOWED("IPv6 compared by value", l, "http://[0:0:0::1]:8080");
    REFUSED("IPv6 other port", l, "http://[::1]:8081");
    REFUSED("IPv6 default port", l, "http://[::1]");
    REFUSED("IPv6 other address", l, "http://[::2]:8080");
    REFUSED("IPv6 without ]", l, "http://[::1:8080");
    REFUSED("IPv6 without brackets", l, "http://::1:8080");
    REFUSED("IPv6 with zone", l, "http://[fe80::1%25eth0]:8080");
    struct config_list wild = LIST("*.example.com");
    REFUSED("IPv6 never matches a wildcard", wild, "http://[::1]:8080");
}

static void test_wildcards(void)
{
    struct config_list any = LIST("*.example.com");
    ALLOWED("subdomain", any, "https://x.example.com");
    ALLOWED("deeper subdomain, http, other port", any, "http://a.b.example.com:8080");
    ALLOWED("subdomain, case", any, "https://X.EXAMPLE.COM");
    ALLOWED("subdomain, trailing dot", any, "https://x.example.com.");
    REFUSED("the domain itself", any, "https://example.com");
    REFUSED("dash suffix attack", any, "https://evil-example.com");
    REFUSED("no-dot suffix attack", any, "https://xexample.com");
    REFUSED("domain inside another", any, "https://example.com.evil.net");
    REFUSED("subdomain inside another", any, "https://x.example.com.evil.net");
    REFUSED("userinfo", any, "https://x.example.com@evil.net");
    REFUSED("empty label before", any, "https://.example.com");
    REFUSED("other scheme", any, "ftp://x.example.com");

    struct config_list https = LIST("https://*.example.com");
    ALLOWED("scheme wildcard", https, "https://a.example.com");
    ALLOWED("scheme wildcard, default port written", https, "https://a.example.com:443");
    REFUSED("scheme wildcard, other port", https, "https://a.example.com:8443");
    REFUSED("scheme wildcard, other scheme", https, "http://a.example.com");
    REFUSED("scheme wildcard, the domain itself", https, "https://example.com");

    struct config_list port = LIST("https://*.example.com:8443");
    ALLOWED("port wildcard", port, "https://a.example.com:8443");
    REFUSED("port wildcard, default port", port, "https://a.example.com");
}

static void test_null(void)
{
    struct config_list l = LIST("https://a.com", "null");
    ALLOWED("null listed", l, "null");
    REFUSED("NULL is not null", l, "NULL");
    ALLOWED("the other item still", l, "https://a.com");
}

static void test_patterns(void)
{
    const char *good[] = {"*", "null", "https://a.com", "http://a.com:8080", "HTTPS://A.COM",
                          "https://a_b.example", "http://[::1]:8080", "https://[2001:db8::1]",
                          "http://127.0.0.1", "*.example.com", "https://*.example.com",
                          "http://*.example.com:8080", "http://localhost"};
    const char *bad[] = {"", "a.com", "ftp://a.com", "https://", "https://a.com/",
                         "https://a.com/x", "https://user@a.com", "https://a.com:0",
                         "https://a.com:65536", "https://a.com:", "https://[::1",
                         "https://[zz]", "*.com", "*.example.com:8080", "*.example.com/",
                         "*.2.3.4", "*example.com", "https://*example.com", "**.a.com",
                         "*.", "https://*.com", "NULL", "https://a b.com", "https://a..com"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char name[96];
        snprintf(name, sizeof(name), "item '%s' is valid", good[i]);
        CHECK(name, origin_pattern_check(good[i]) == NULL);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char name[96];
        snprintf(name, sizeof(name), "item '%s' is refused", bad[i]);
        CHECK(name, origin_pattern_check(bad[i]) != NULL);
    }
}

int main(void)
{
    test_empty_list();
    test_exact();
    test_ipv6();
    test_wildcards();
    test_null();
    test_patterns();
    return check_failed ? 1 : 0;
}
