/* request.c -- see request.h. */
#define _POSIX_C_SOURCE 200809L
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *param(FCGX_Request *f, const char *name)
{
    const char *v = FCGX_GetParam(name, f->envp);
    return v ? v : "";
}

void request_init(struct request *r, FCGX_Request *fcgi)
{
    memset(r, 0, sizeof(*r));
    r->fcgi = fcgi;
    r->method = param(fcgi, "REQUEST_METHOD");
    const char *uri = param(fcgi, "REQUEST_URI");
    if (!uri[0])
        uri = param(fcgi, "SCRIPT_NAME");
    size_t n = strcspn(uri, "?");
    if (n >= sizeof(r->path))
        n = sizeof(r->path) - 1;
    memcpy(r->path, uri, n);
    r->path[n] = '\0';
    r->query = param(fcgi, "QUERY_STRING");
    if (!r->query[0] && uri[n] == '?')
        r->query = uri + n + 1;
    r->content_type = param(fcgi, "CONTENT_TYPE");
    r->authorization = param(fcgi, "HTTP_AUTHORIZATION");
    r->peer = param(fcgi, "REMOTE_ADDR");
    r->forwarded_for = param(fcgi, "HTTP_X_FORWARDED_FOR");
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", fcgi->envp);
    char *end;
    r->content_length = cl && cl[0] ? strtol(cl, &end, 10) : -1;
    if (cl && cl[0] && (*end || r->content_length < 0))
        r->content_length = -1;
}

void request_free(struct request *r)
{
    buf_free(&r->body);
}

int request_read_body(struct request *r, size_t limit, int *status, const char **reason)
{
    if (r->content_length < 0) {
        *status = 411;
        *reason = "请求缺少 Content-Length (Content-Length required)";
        return -1;
    }
    if ((size_t)r->content_length > limit) {
        *status = 413;
        *reason = "请求体过大 (request body too large)";
        return -1;
    }
    size_t want = (size_t)r->content_length;
    if (buf_reserve(&r->body, want) != 0) {
        *status = 500;
        *reason = "服务内部错误 (out of memory)";
        return -1;
    }
    while (r->body.len < want) {
        int n = FCGX_GetStr(r->body.data + r->body.len, (int)(want - r->body.len), r->fcgi->in);
        if (n <= 0)
            break;
        r->body.len += (size_t)n;
    }
    r->body.data[r->body.len] = '\0';
    if (r->body.len != want) {
        *status = 400;
        *reason = "请求体不完整 (request body shorter than Content-Length)";
        return -1;
    }
    return 0;
}

/* Reads what is left of the request body, at most limit bytes; 1 when it
 * reached the end of the body. */
static int drain_body(FCGX_Stream *in, size_t limit)
{
    char scratch[4096];
    while (limit > 0) {
        int n = FCGX_GetStr(scratch, (int)(limit < sizeof(scratch) ? limit : sizeof(scratch)), in);
        if (n <= 0)
            return FCGX_HasSeenEOF(in) != 0 && FCGX_GetError(in) == 0;
        limit -= (size_t)n;
    }
    return FCGX_GetChar(in) == EOF && FCGX_GetError(in) == 0;
}

void request_finish(struct request *r)
{
    /* libfcgi closes a connection with shutdown(), then waits in poll()
     * until the web server has closed its end: so that unread input cannot
     * reset the connection under our response. When the whole body has been
     * read there is nothing to reset, and that wait is a third of a request's
     * time. A detached request is closed at once (libfcgi skips the
     * shutdown for it); an unread large body still gets the careful close. */
    int drained = drain_body(r->fcgi->in, 65536);
    /* a connection the web server keeps (FCGI_KEEP_CONN) stays open for its
     * next request (slots.h), unless input is left on it */
    if (!drained)
        r->fcgi->keepConnection = 0;
    else if (!r->fcgi->keepConnection)
        FCGX_Detach(r->fcgi);
    FCGX_Finish_r(r->fcgi);
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

void respond_typed(struct request *r, int status, const char *content_type,
                   const char *extra_headers, const char *body)
{
    r->status = status;
    FCGX_FPrintF(r->fcgi->out,
                 "Status: %d %s\r\n"
                 "Content-Type: %s\r\n"
                 "Cache-Control: no-store\r\n"
                 "%s\r\n",
                 status, status_text(status), content_type, extra_headers);
    if (!r->head)
        FCGX_PutS(body, r->fcgi->out);
}

void respond(struct request *r, int status, const char *extra_headers, const char *json)
{
    respond_typed(r, status, "application/json; charset=utf-8", extra_headers, json);
}

void respond_error_with(struct request *r, int status, const char *extra_headers,
                        const char *reason)
{
    struct buf b = BUF_INIT;
    if (buf_printf(&b, "{\"code\":%d,\"message\":", status) != 0 ||
        buf_json_string(&b, reason, strlen(reason)) != 0 || buf_puts(&b, "}") != 0) {
        respond(r, 500, "", "{\"code\":500,\"message\":\"out of memory\"}");
    } else {
        respond(r, status, extra_headers, b.data);
    }
    buf_free(&b);
}

void respond_error(struct request *r, int status, const char *reason)
{
    respond_error_with(r, status, "", reason);
}
