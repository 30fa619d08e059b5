/* test_proxy.c -- trusted proxies: networks, and the client address taken
 * from X-Forwarded-For only as far as trusted proxies vouch for it. */
#define _POSIX_C_SOURCE 200809L
#define TEST_NAME "proxy"
#include "check.h"
#include "proxy.h"

static struct proxy_nets nets_of(char **items, size_t n)
{
    struct config_list l = {n, items};
    struct proxy_nets nets;
    char err[256];
    if (proxy_nets_init(&nets, &l, err, sizeof(err)) != 0) {
        printf("FAIL %s: proxy_nets_init: %s\n", TEST_NAME, err);
        check_failed++;
    }
    return nets;
}

#define NETS(...) nets_of((char *[]){__VA_ARGS__}, sizeof((char *[]){__VA_ARGS__}) / sizeof(char *))

/* The client address, or "(error)". */
static const char *client(const struct proxy_nets *n, const char *peer, const char *xff)
{
    static char out[PROXY_ADDR_MAX];
    return proxy_client_address(n, peer, xff, out, sizeof(out)) == 0 ? out : "(error)";
}

static void test_parse(void)
{
    struct proxy_net net;
    const char *good[] = {"10.0.0.0/8", "::1", "fd00::/8", "192.168.1.7", "0.0.0.0/0", "::/0",
                          "10.0.0.1/32", "2001:db8::1/128", "::ffff:10.0.0.0/104", "fc00::/7"};
    const char *bad[] = {"", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.1.0.0/8", "10.0.0.1/31",
                         "fd00::1/8", "010.0.0.1", "10.0.0", "1.2.3.4/-1", "1.2.3.4/+8",
                         "1.2.3.4/ 8", " 1.2.3.4", "[::1]", "fe80::1%eth0", "unknown",
                         "1.2.3.4:80", "10.0.0.0/8/8", "10.0.0.0/0008"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char name[96];
        snprintf(name, sizeof(name), "'%s' is a network", good[i]);
        CHECK(name, proxy_net_parse(good[i], &net) == NULL);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char name[96];
        snprintf(name, sizeof(name), "'%s' is refused", bad[i]);
        CHECK(name, proxy_net_parse(bad[i], &net) != NULL);
    }

    char *items[] = {"10.0.0.0/8", "bogus"};
    struct config_list l = {2, items};
    struct proxy_nets n;
    char err[256];
    CHECK("init refuses a bad item, naming it",
          proxy_nets_init(&n, &l, err, sizeof(err)) < 0 && strstr(err, "'bogus'") &&
              n.n == 0 && !n.nets);
    struct config_list empty = {0, NULL};
    CHECK("init of an empty list", proxy_nets_init(&n, &empty, err, sizeof(err)) == 0 && n.n == 0);
    proxy_nets_free(&n);
}

static void test_trusted(void)
{
    struct proxy_nets n = NETS("127.0.0.1", "::1", "10.0.0.0/8", "192.168.1.128/25", "fc00::/7");
    CHECK("exact IPv4", proxy_trusted(&n, "127.0.0.1"));
    CHECK("next IPv4", !proxy_trusted(&n, "127.0.0.2"));
    CHECK("exact IPv6", proxy_trusted(&n, "::1"));
    CHECK("IPv6 written long", proxy_trusted(&n, "0:0:0:0:0:0:0:1"));
    CHECK("mapped IPv4 matches the IPv4 address", proxy_trusted(&n, "::ffff:127.0.0.1"));
    CHECK("mapped IPv4 matches an IPv4 network", proxy_trusted(&n, "::ffff:10.9.8.7"));
    CHECK("/8 first", proxy_trusted(&n, "10.0.0.0"));
    CHECK("/8 last", proxy_trusted(&n, "10.255.255.255"));
    CHECK("/8 before", !proxy_trusted(&n, "9.255.255.255"));
    CHECK("/8 after", !proxy_trusted(&n, "11.0.0.0"));
    CHECK("/25 first", proxy_trusted(&n, "192.168.1.128"));
    CHECK("/25 last", proxy_trusted(&n, "192.168.1.255"));
    CHECK("/25 before", !proxy_trusted(&n, "192.168.1.127"));
    CHECK("/7 covers fc00::", proxy_trusted(&n, "fc00::1"));
    CHECK("/7 covers fdff::", proxy_trusted(&n, "fdff:ffff::1"));
    CHECK("/7 not fe00::", !proxy_trusted(&n, "fe00::1"));
    CHECK("not an address", !proxy_trusted(&n, "localhost"));
    CHECK("address with port is not an address", !proxy_trusted(&n, "127.0.0.1:80"));
    CHECK("NULL", !proxy_trusted(&n, NULL));
    CHECK("IPv4 networks do not cover IPv6", !proxy_trusted(&n, "2001:db8::1"));
    proxy_nets_free(&n);

    struct proxy_nets all4 = NETS("0.0.0.0/0");
    CHECK("/0 IPv4: any IPv4", proxy_trusted(&all4, "1.2.3.4") && proxy_trusted(&all4, "255.255.255.255") &&
                                   proxy_trusted(&all4, "0.0.0.0"));
    CHECK("/0 IPv4: no IPv6", !proxy_trusted(&all4, "2001:db8::1") && !proxy_trusted(&all4, "::1"));
    proxy_nets_free(&all4);
    struct proxy_nets all6 = NETS("::/0");
    CHECK("/0 IPv6: any IPv6, and IPv4 as mapped",
          proxy_trusted(&all6, "2001:db8::1") && proxy_trusted(&all6, "1.2.3.4"));
    proxy_nets_free(&all6);
    struct proxy_nets one = NETS("10.0.0.1/32", "2001:db8::1/128", "2001:db8::2/127");
    CHECK("/32 itself", proxy_trusted(&one, "10.0.0.1"));
    CHECK("/32 neighbours", !proxy_trusted(&one, "10.0.0.0") && !proxy_trusted(&one, "10.0.0.2"));
    CHECK("/128 itself", proxy_trusted(&one, "2001:db8::1"));
    CHECK("/128 neighbour", !proxy_trusted(&one, "2001:db8::0"));
    CHECK("/127 both", proxy_trusted(&one, "2001:db8::2") && proxy_trusted(&one, "2001:db8::3"));
    CHECK("/127 next", !proxy_trusted(&one, "2001:db8::4"));
    proxy_nets_free(&one);
}

static void test_client(void)
{
    struct proxy_nets n = NETS("127.0.0.1", "::1", "10.0.0.0/8", "fd00::/8");
    CHECK_STR("no XFF: the peer", "203.0.113.5", client(&n, "203.0.113.5", NULL));
    CHECK_STR("trusted peer, no XFF: the peer", "127.0.0.1", client(&n, "127.0.0.1", NULL));
    CHECK_STR("empty XFF: the peer", "127.0.0.1", client(&n, "127.0.0.1", ""));
    CHECK_STR("blank XFF: the peer", "127.0.0.1", client(&n, "127.0.0.1", " \t "));
    CHECK_STR("untrusted peer ignores XFF", "203.0.113.5",
              client(&n, "203.0.113.5", "1.1.1.1, 10.0.0.1"));
    CHECK_STR("trusted peer, one entry", "198.51.100.7", client(&n, "127.0.0.1", "198.51.100.7"));
    CHECK_STR("trusted chain, spoofed left entries ignored", "198.51.100.7",
              client(&n, "127.0.0.1", "6.6.6.6, 7.7.7.7, 198.51.100.7, 10.0.0.2,10.1.1.1"));
    CHECK_STR("all trusted: the leftmost", "10.0.0.3",
              client(&n, "127.0.0.1", "10.0.0.3, 10.0.0.2"));
    CHECK_STR("garbage stops the walk at the current address", "127.0.0.1",
              client(&n, "127.0.0.1", "1.2.3.4, unknown"));
    CHECK_STR("garbage further left", "10.0.0.2", client(&n, "127.0.0.1", "unknown, 10.0.0.2"));
    CHECK_STR("empty entry stops the walk", "127.0.0.1", client(&n, "127.0.0.1", "1.2.3.4,"));
    CHECK_STR("empty entry in the middle", "10.0.0.2",
              client(&n, "127.0.0.1", "1.2.3.4,,10.0.0.2"));
    CHECK_STR("entries trimmed", "5.6.7.8", client(&n, "127.0.0.1", " 1.2.3.4 ,\t5.6.7.8 "));
    CHECK_STR("IPv4 with port", "1.2.3.4", client(&n, "127.0.0.1", "1.2.3.4:5678"));
    CHECK_STR("IPv4 with a bad port", "127.0.0.1", client(&n, "127.0.0.1", "1.2.3.4:99999"));
    CHECK_STR("IPv4 with an empty port", "127.0.0.1", client(&n, "127.0.0.1", "1.2.3.4:"));
    CHECK_STR("[IPv6]:port", "2001:db8::1", client(&n, "127.0.0.1", "[2001:db8::1]:443"));
    CHECK_STR("[IPv6]", "2001:db8::1", client(&n, "127.0.0.1", "[2001:db8::1]"));
    CHECK_STR("[IPv4] is not an entry", "127.0.0.1", client(&n, "127.0.0.1", "[1.2.3.4]"));
    CHECK_STR("[IPv6] followed by junk", "127.0.0.1", client(&n, "127.0.0.1", "[::2]x"));
    CHECK_STR("IPv6 looking like a port is IPv6", "2001:db8::1:80",
              client(&n, "127.0.0.1", "2001:db8::1:80"));
    CHECK_STR("IPv6 normalised", "2001:db8::1", client(&n, "::1", "2001:DB8:0:0::1"));
    CHECK_STR("IPv6 chain", "2001:db8::5", client(&n, "fd00::1", "2001:db8::5, fd00::2"));
    CHECK_STR("mapped trusted peer", "198.51.100.7",
              client(&n, "::ffff:127.0.0.1", "198.51.100.7"));
    CHECK_STR("mapped untrusted peer reported as IPv4", "203.0.113.9",
              client(&n, "::ffff:203.0.113.9", "1.1.1.1"));
    CHECK_STR("mapped trusted entry", "198.51.100.7",
              client(&n, "127.0.0.1", "198.51.100.7, ::ffff:10.0.0.2"));
    CHECK_STR("peer not an IP is copied", "unix:/run/x", client(&n, "unix:/run/x", "1.2.3.4"));
    CHECK_STR("NULL peer", "", client(&n, NULL, "1.2.3.4"));
    CHECK_STR("over-long entry stops the walk", "127.0.0.1",
              client(&n, "127.0.0.1",
                     "1111111111111111111111111111111111111111111111111111111111111111111111"));
    char small[8];
    CHECK("a result that does not fit is an error",
          proxy_client_address(&n, "127.0.0.1", "2001:db8::1", small, sizeof(small)) < 0 &&
              small[0] == '\0');
    proxy_nets_free(&n);

    struct proxy_nets none = {0, NULL};
    CHECK_STR("no trusted proxies: XFF never believed", "127.0.0.1",
              client(&none, "127.0.0.1", "1.2.3.4"));
}

int main(void)
{
    test_parse();
    test_trusted();
    test_client();
    return check_failed ? 1 : 0;
}
