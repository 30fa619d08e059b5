/* message.h -- the rules a user's message must follow and the reason given
 * when it does not, defined once for fcgi-api (HTTP) and ws-push (WebSocket).
 *
 * Every reason is Chinese with an English gloss in parentheses
 * (docs/PROTOCOL.md). The reasons are objects, so a caller may compare a
 * returned reason with one of them (e.g. to answer 413 instead of 400). */
#ifndef AIMSG_MESSAGE_H
#define AIMSG_MESSAGE_H

#include <stddef.h>

#include "buf.h"
#include "conversation.h"
#include "job.h"

extern const char MSG_FRAME_TOO_LARGE[];
extern const char MSG_BINARY_FRAME[];
extern const char MSG_NOT_JSON_OBJECT[];
extern const char MSG_UNKNOWN_TYPE[];
extern const char MSG_CONTENT_MISSING[];
extern const char MSG_CONTENT_NOT_STRING[];
extern const char MSG_CONTENT_EMPTY[];
extern const char MSG_CONTENT_TOO_LONG[];
extern const char MSG_CONTENT_NOT_UTF8[];
extern const char MSG_CONTENT_NUL[];
extern const char MSG_QUESTION_NOT_STRING[];
extern const char MSG_QUESTION_TOO_LONG[];
extern const char MSG_QUESTION_NOT_UTF8[];
extern const char MSG_QUESTION_NUL[];
extern const char MSG_IMAGE_MISSING[];
extern const char MSG_IMAGE_EMPTY[];
extern const char MSG_IMAGE_TOO_LARGE[];
extern const char MSG_IMAGE_TYPE[];
extern const char MSG_IMAGE_BAD_DATA_URL[];
extern const char MSG_IMAGE_NOT_BASE64[];
extern const char MSG_INTERNAL[];
extern const char MSG_RESUME_BAD[];
extern const char MSG_CANCEL_BAD[];
extern const char MSG_RESUME_LATER[];
extern const char MSG_RESUME_TWICE[];
/* Redis is unreachable or refused the request: what a client is told (the
 * cause, which may name hosts, is only logged). */
extern const char MSG_SERVICE_UNAVAILABLE[];
extern const char MSG_CANCEL_LATER[];
extern const char MSG_AUTH_BAD[];
extern const char MSG_AUTH_FIRST[];
extern const char MSG_AUTH_TIMEOUT[];
extern const char MSG_CONVERSATION_BUSY[];
extern const char MSG_AUTH_OTHER_USER[];

/* 1 when s[0..len) is well-formed UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF), else 0. */
int message_utf8_valid(const char *s, size_t len);

/* The content of a text message: non-blank UTF-8 without NUL, at most
 * max_bytes bytes. Returns NULL when acceptable, else the reason. */
const char *message_check_text(const char *s, size_t len, long max_bytes);

/* The question about an image: may be empty; UTF-8 without NUL, at most
 * max_bytes bytes. Returns NULL or the reason. */
const char *message_check_question(const char *s, size_t len, long max_bytes);

/* An uploaded image: non-empty, at most max_bytes, a known type by its magic
 * bytes (*mime is set to it). Returns NULL or the reason. */
const char *message_check_image(const void *p, size_t len, long max_bytes, const char **mime);

/* A WebSocket client message, parsed and checked (docs/PROTOCOL.md):
 * {"type":"text","content":...}, {"type":"image","content":<base64 or
 * data: URL>,"question":...} (both with an optional "conversation" and
 * "model"), {"type":"resume","id":...,"after":N},
 * {"type":"cancel","id":...} or {"type":"auth","token":...}. */
enum client_request { CLIENT_ASK, CLIENT_RESUME, CLIENT_CANCEL, CLIENT_AUTH };
struct client_message {
    enum client_request request;
    char id[48];                /* resume, cancel: the answer's job id */
    long after;                 /* resume: the last seq the client has */
    enum job_kind kind;
    struct buf text;            /* the text, the question (may be empty), or the token */
    struct buf image;           /* decoded image bytes (image messages) */
    const char *mime;           /* image type (image messages) */
    char conversation[CONVERSATION_ID_LEN + 1]; /* text, image: "" = a new one */
    char model[257];            /* text, image: "" = the default (models_check it) */
};

/* Fills m from a frame's bytes. Returns NULL, or the reason to send back.
 * m must be freed with client_message_free either way. */
const char *client_message_parse(struct client_message *m, const char *data, size_t len,
                                 long max_message_bytes, long max_image_bytes);
void client_message_free(struct client_message *m);

#endif
