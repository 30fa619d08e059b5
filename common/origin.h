/* origin.h -- which web pages may open a WebSocket: the Origin allowlist
 * (ws_allowed_origins).
 *
 * Why: a browser sends the cookies and the HTTP authentication of a site
 * with every WebSocket it opens to that site, whichever page opens it, and
 * the same-origin policy does not apply to WebSockets. So any page the user
 * visits could open our socket with the user's credentials and read the
 * answers (cross-site WebSocket hijacking). The browser always sends the
 * page's Origin with the handshake and a page cannot forge it; checking it
 * closes the hole. Other clients (curl, scripts, the tests) send no Origin
 * or any Origin they like: they hold no one else's credentials, so a missing
 * or empty Origin is allowed -- refusing it would stop them and protect no one.
 *
 * The list (items of ws_allowed_origins):
 *   empty              every Origin is allowed (the default: the demo works
 *                      from any page; set the list in production).
 *   *                  the same, said explicitly; must be the only item.
 *                      Discouraged: it turns the check off.
 *   null               the Origin "null" (sandboxed frames, file: pages),
 *                      which is otherwise refused. Lower case, exactly.
 *   scheme://host[:port]
 *                      one origin. scheme is http or https; host a DNS name,
 *                      an IPv4 address or [an IPv6 address]; without a port
 *                      the scheme's default (http 80, https 443), so
 *                      https://a.com is https://a.com:443.
 *   *.domain           any subdomain of domain, at any depth (a.domain,
 *                      b.a.domain), not domain itself; http or https, any
 *                      port. domain has two labels or more (*.com is refused).
 *   scheme:// *.domain[:port]   (written without the space)
 *                      the same subdomains with that scheme and that port
 *                      only (the default port when none is written).
 *
 * Matching: scheme and host compare case-insensitively, the port exactly,
 * IPv6 addresses by value ([::1] is [0:0::1]); one trailing dot of a host
 * is ignored (a.com. is served by a.com). An Origin must look like what
 * browsers send: scheme://host[:port] and nothing more -- with a path,
 * userinfo (https://a.com@evil.net), spaces or any other scheme it
 * matches nothing. */
#ifndef AIMSG_ORIGIN_H
#define AIMSG_ORIGIN_H

#include "config.h"

/* 1 when a page of origin (the Origin header's value; NULL or "" when the
 * request has none) may connect, else 0. */
int origin_allowed(const struct config_list *allowed, const char *origin);

/* NULL when item is a valid entry of the list above, else why not. The
 * rule that * stands alone is the config's (it sees the whole list). */
const char *origin_pattern_check(const char *item);

#endif
