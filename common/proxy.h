/* proxy.h -- which address a request really comes from, behind proxies.
 *
 * The web server (lighttpd/apache, or a load balancer in front of it) tells
 * the client's address in X-Forwarded-For; every hop appends the address it
 * received the request from, so the header reads "client, proxy1, proxy2"
 * and the peer of the socket is the last proxy. Anyone can send the header
 * with anything in it, so only the entries added by proxies we trust
 * (trusted_proxies: addresses and CIDR networks) are believed: walking from
 * the right, the first address that is not a trusted proxy is the client.
 *
 * Addresses live in one 128-bit space: an IPv4 address a.b.c.d is
 * ::ffff:a.b.c.d, so an IPv4-mapped IPv6 peer (a dual-stack socket) matches
 * the IPv4 networks, and is reported in its IPv4 form. A consequence: an
 * IPv6 network that contains ::ffff:0:0/96 (::/0, ::/8) covers all of IPv4
 * as well. */
#ifndef AIMSG_PROXY_H
#define AIMSG_PROXY_H

#include <stddef.h>

#include "config.h"

/* Enough for any address proxy_client_address() normalises (INET6_ADDRSTRLEN). */
#define PROXY_ADDR_MAX 46

struct proxy_net {
    unsigned char addr[16];     /* network address, host bits zero */
    unsigned prefix;            /* 0..128, in the 128-bit space */
};

struct proxy_nets {
    size_t n;
    struct proxy_net *nets;
};

/* "10.0.0.0/8", "::1", "fd00::/8", "192.168.1.7": NULL when text is an
 * address or a network (out filled in), else why it is not. Host bits set
 * below the prefix ("10.1.0.0/8") are refused as a likely typo. */
const char *proxy_net_parse(const char *text, struct proxy_net *out);

/* Parses every item of l (trusted_proxies) once, at startup. -1 with the
 * bad item and why in err. */
int proxy_nets_init(struct proxy_nets *n, const struct config_list *l, char *err,
                    size_t errlen);
void proxy_nets_free(struct proxy_nets *n);

/* 1 when addr (an IP address, no port) is in one of the networks. */
int proxy_trusted(const struct proxy_nets *n, const char *addr);

/* The address of the client, to count limits by. Starts with peer, the
 * address the socket (or the web server, REMOTE_ADDR) reports; while the
 * current address is trusted and x_forwarded_for (may be NULL) has entries
 * left, takes the rightmost entry left. The result is the first untrusted
 * address met, or the leftmost entry when every one is trusted. Entries
 * are comma-separated and trimmed; "1.2.3.4:5678" and "[v6]:port" lose
 * their port; an entry that is not an address after that ("unknown",
 * garbage, an empty entry) stops the walk at the current address.
 * Output is normalised (inet_ntop; IPv4-mapped as IPv4). A peer that is not
 * an IP address (a unix socket) is never trusted and is copied as given.
 * Returns 0, or -1 when the result does not fit in out (out is then ""). */
int proxy_client_address(const struct proxy_nets *n, const char *peer,
                         const char *x_forwarded_for, char *out, size_t outlen);

#endif
