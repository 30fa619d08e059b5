/* conns.h -- one user's (or, without authentication, one address's)
 * WebSockets over every ws-push instance, kept in Redis:
 *
 *   P conns:<subject>  sorted set; member <instance>:<run>:<conn>, score =
 *                      when its instance last vouched for it (ms, Redis' clock)
 *
 * ws-push adds a socket when it opens (conns_admit_lua, which refuses it
 * when the subject holds ws_max_connections_per_user already: one script,
 * so the limit is exact however many instances admit at once), vouches for
 * its sockets again every presence_ttl/3 s (conns_refresh_lua), and removes
 * one when it closes (ZREM). A member not vouched for within presence_ttl
 * belongs to an instance that died: it no longer counts. */
#ifndef AIMSG_CONNS_H
#define AIMSG_CONNS_H

/* KEYS[1] the set; ARGV: member, limit (0: none), stale ms.
 * Returns 1 (added) or 0 (refused: over the limit). */
extern const char conns_admit_lua[];
/* KEYS[1] the set; ARGV: stale ms, then members. Sets their score to now. */
extern const char conns_refresh_lua[];
/* KEYS[1] the set; ARGV: stale ms. Returns the live members' count. */
extern const char conns_count_lua[];

#endif
