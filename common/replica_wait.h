/* replica_wait.h -- how the long-lived connections (the worker's control
 * connection, ws-push's command link) use WAIT with redis_wait_replicas.
 *
 * WAIT blocks the connection it is sent on (Redis answers nothing else on
 * it until WAIT answers), and one WAIT covers every write sent before it on
 * that connection. So each such connection has at most one WAIT in flight:
 * the writes sent while it waits are covered together by the next one, sent
 * when it answers. A WAIT that answers with fewer replicas than asked (a
 * replica slow or unreachable) starts a pause of REPLICA_WAIT_PAUSE_MS
 * during which no WAIT is sent: the worker ends its answers without WAIT
 * (and confirms the one that WAIT answered short), ws-push refuses jobs
 * (MSG_NOT_REPLICATED). fcgi-api, one request at a time on its connection,
 * WAITs for each job. */
#ifndef AIMSG_REPLICA_WAIT_H
#define AIMSG_REPLICA_WAIT_H

#define REPLICA_WAIT_PAUSE_MS 5000

#endif
