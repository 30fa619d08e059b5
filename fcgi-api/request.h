/* request.h -- one FastCGI request: what was asked, its body, and the reply. */
#ifndef AIMSG_REQUEST_H
#define AIMSG_REQUEST_H

#include <fcgiapp.h>
#include <stddef.h>

#include "buf.h"
#include "enqueue.h"
#include "keys.h"

struct api;

struct request {
    FCGX_Request *fcgi;
    const char *method;
    char path[512];           /* REQUEST_URI without the query string */
    const char *query;        /* the query string, without '?'; "" when none */
    const char *content_type; /* "" when absent */
    long content_length;      /* -1 when absent */
    int head;                 /* HEAD: answered like GET, without the body */
    const char *authorization; /* "" when absent */
    const char *peer;         /* REMOTE_ADDR: who the web server talks to */
    const char *forwarded_for; /* X-Forwarded-For, "" when absent */
    /* who asks (access.c) */
    char subject[KEYS_MAX_SUBJECT]; /* quotas' key: user:<sub> or addr:<ip> */
    char inbox[KEYS_MAX_SUBJECT + 100]; /* where its answers go */
    const char *owner;        /* what it may resume/cancel: inbox; NULL: any */
    int admin;
    struct buf body;
    /* set by a handler that waits for Redis replies: answers with them */
    void (*then)(struct api *api, struct request *r);
    char cancel_id[48];       /* POST /api/cancel: the id, for its reply */
    struct enqueue_shape enqueued; /* the replies a queued job waits for */
    int route;                /* index in api.c's routes; -1: none */
    int status;               /* of the response sent */
};

void request_init(struct request *r, FCGX_Request *fcgi);
void request_free(struct request *r);

/* Reads the body when it is at most limit bytes. Returns 0, or -1 when it
 * is missing (411), larger than limit (413) or shorter than announced. */
int request_read_body(struct request *r, size_t limit, int *status, const char **reason);

/* Ends the request: sends the response and closes the connection, unless
 * the web server keeps it for its next request (FCGI_KEEP_CONN). */
void request_finish(struct request *r);

/* Writes status and a JSON body; extra_headers is "" or "Name: value\r\n"... */
void respond(struct request *r, int status, const char *extra_headers, const char *json);
void respond_typed(struct request *r, int status, const char *content_type,
                   const char *extra_headers, const char *body);
/* {"code":status,"message":reason} */
void respond_error(struct request *r, int status, const char *reason);
void respond_error_with(struct request *r, int status, const char *extra_headers,
                        const char *reason);

#endif
