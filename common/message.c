/* message.c -- see message.h. */
#define _POSIX_C_SOURCE 200809L
#include "message.h"

#include <limits.h>

#include <ctype.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>

#include "answer.h"
#include "base64.h"
#include "conversation.h"
#include "image.h"
#include "models.h"

const char MSG_FRAME_TOO_LARGE[] = "消息过大 (message too large)";
const char MSG_BINARY_FRAME[] = "不支持二进制消息，请发送 JSON 文本 (binary frames are not supported)";
const char MSG_NOT_JSON_OBJECT[] = "消息不是有效的 JSON 对象 (message is not a JSON object)";
const char MSG_UNKNOWN_TYPE[] =
    "未知的消息类型，应为 text、image、resume 或 cancel (unknown \"type\")";
const char MSG_RESUME_BAD[] =
    "resume 需要 id 和 after (resume needs a job \"id\" and an integer \"after\" >= -1)";
const char MSG_CANCEL_BAD[] = "cancel 需要 id (cancel needs a job \"id\")";
const char MSG_RESUME_LATER[] = "服务暂时不可用 (cannot resume now, try again)";
const char MSG_RESUME_TWICE[] = "正在恢复这个回答 (that answer is being resumed already)";
const char MSG_CANCEL_LATER[] = "服务暂时不可用 (cannot cancel now, try again)";
const char MSG_SERVICE_UNAVAILABLE[] = "服务暂时不可用 (service unavailable, try again)";
const char MSG_AUTH_BAD[] = "认证消息格式错误 (expected {\"type\":\"auth\",\"token\":\"<jwt>\"})";
const char MSG_AUTH_FIRST[] = "请先认证 (authenticate first: send {\"type\":\"auth\",\"token\":\"<jwt>\"} or connect with ?token=)";
const char MSG_AUTH_TIMEOUT[] = "认证超时 (no token within ws_auth_timeout seconds)";
const char MSG_CONVERSATION_BUSY[] =
    "这个会话的问题太多 (too many questions waiting in this conversation: "
    "conversation_max_queued reached, wait for an answer)";
const char MSG_AUTH_OTHER_USER[] = "令牌属于另一个用户 (that token is for another user than this socket's)";
const char MSG_CONTENT_MISSING[] = "缺少 content 字段 (missing \"content\")";
const char MSG_CONTENT_NOT_STRING[] = "content 必须是字符串 (\"content\" must be a string)";
const char MSG_CONTENT_EMPTY[] = "消息内容不能为空 (\"content\" is empty)";
const char MSG_CONTENT_TOO_LONG[] = "消息内容过长 (message too long)";
const char MSG_CONTENT_NOT_UTF8[] = "消息内容不是有效的 UTF-8 (\"content\" is not valid UTF-8)";
const char MSG_CONTENT_NUL[] = "消息内容不能包含 NUL 字符 (\"content\" contains a NUL character)";
const char MSG_QUESTION_NOT_STRING[] = "question 必须是字符串 (\"question\" must be a string)";
const char MSG_QUESTION_TOO_LONG[] = "问题过长 (question too long)";
const char MSG_QUESTION_NOT_UTF8[] = "问题不是有效的 UTF-8 (question is not valid UTF-8)";
const char MSG_QUESTION_NUL[] = "问题不能包含 NUL 字符 (question contains a NUL character)";
const char MSG_IMAGE_MISSING[] = "缺少 image 字段 (missing field \"image\")";
const char MSG_IMAGE_EMPTY[] = "图片为空 (image is empty)";
const char MSG_IMAGE_TOO_LARGE[] = "图片过大 (image too large)";
const char MSG_IMAGE_TYPE[] = "不支持的图片格式，仅支持 JPEG、PNG、GIF、WebP "
                              "(unsupported image type: JPEG, PNG, GIF or WebP only)";
const char MSG_IMAGE_BAD_DATA_URL[] = "图片数据格式错误 (bad data URL)";
const char MSG_IMAGE_NOT_BASE64[] = "图片不是有效的 base64 (image is not valid base64)";
const char MSG_INTERNAL[] = "服务内部错误 (internal error)";

/* Length of the UTF-8 sequence at s (at most n bytes), or 0 if malformed
 * (RFC 3629, table 3-7 of Unicode). */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0; /* overlong */
    else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    else if (c == 0xF0)
        lo = 0x90; /* overlong */
    else if (c == 0xF4)
        hi = 0x8F; /* above U+10FFFF */
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

int message_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence(p + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return 0;
    return 1;
}

const char *message_check_text(const char *s, size_t len, long max_bytes)
{
    if (is_blank(s, len))
        return MSG_CONTENT_EMPTY;
    if (len > (size_t)max_bytes)
        return MSG_CONTENT_TOO_LONG;
    if (!message_utf8_valid(s, len))
        return MSG_CONTENT_NOT_UTF8;
    if (memchr(s, '\0', len))
        return MSG_CONTENT_NUL;
    return NULL;
}

const char *message_check_question(const char *s, size_t len, long max_bytes)
{
    if (len > (size_t)max_bytes)
        return MSG_QUESTION_TOO_LONG;
    if (!message_utf8_valid(s, len))
        return MSG_QUESTION_NOT_UTF8;
    if (memchr(s, '\0', len))
        return MSG_QUESTION_NUL;
    return NULL;
}

const char *message_check_image(const void *p, size_t len, long max_bytes, const char **mime)
{
    *mime = NULL;
    if (len == 0)
        return MSG_IMAGE_EMPTY;
    if (len > (size_t)max_bytes)
        return MSG_IMAGE_TOO_LARGE;
    *mime = image_mime(p, len);
    return *mime ? NULL : MSG_IMAGE_TYPE;
}

/* Decodes bare base64 or a data: URL into m->image and checks the image. */
static const char *read_image(struct client_message *m, const char *b64, size_t len,
                              long max_image_bytes)
{
    if (len > 5 && strncmp(b64, "data:", 5) == 0) {
        const char *comma = memchr(b64, ',', len);
        if (!comma)
            return MSG_IMAGE_BAD_DATA_URL;
        len -= (size_t)(comma + 1 - b64);
        b64 = comma + 1;
    }
    if (base64_decode(&m->image, b64, len) != 0)
        return MSG_IMAGE_NOT_BASE64;
    return message_check_image(m->image.data, m->image.len, max_image_bytes, &m->mime);
}

static const char *read_question(struct client_message *m, json_t *q, long max_message_bytes)
{
    if (!q || json_is_null(q))
        return buf_puts(&m->text, "") == 0 ? NULL : MSG_INTERNAL;
    if (!json_is_string(q))
        return MSG_QUESTION_NOT_STRING;
    const char *why =
        message_check_question(json_string_value(q), json_string_length(q), max_message_bytes);
    if (why)
        return why;
    if (buf_append(&m->text, json_string_value(q), json_string_length(q)) != 0)
        return MSG_INTERNAL;
    return NULL;
}

/* {"type":"resume","id":…,"after":N} or {"type":"cancel","id":…} */
static const char *read_request(struct client_message *m, json_t *root, enum client_request r)
{
    const char *bad = r == CLIENT_RESUME ? MSG_RESUME_BAD : MSG_CANCEL_BAD;
    const char *id = json_string_value(json_object_get(root, "id"));
    json_t *after = json_object_get(root, "after");
    m->request = r;
    if (!id || strlen(id) >= sizeof(m->id) || !answer_id_valid(id))
        return bad;
    strcpy(m->id, id);
    if (r == CLIENT_RESUME) {
        if (!json_is_integer(after) || json_integer_value(after) < -1 ||
            json_integer_value(after) > LONG_MAX - 2)
            return bad;
        m->after = (long)json_integer_value(after);
    }
    return NULL;
}

/* {"type":"auth","token":…}: the token in m->text */
static const char *read_auth(struct client_message *m, json_t *root)
{
    json_t *token = json_object_get(root, "token");
    m->request = CLIENT_AUTH;
    if (!json_is_string(token) || json_string_length(token) == 0)
        return MSG_AUTH_BAD;
    return buf_append(&m->text, json_string_value(token), json_string_length(token)) == 0
               ? NULL
               : MSG_INTERNAL;
}

/* "conversation": absent or null (a new one), or a conversation id */
static const char *read_conversation(struct client_message *m, json_t *root)
{
    json_t *c = json_object_get(root, "conversation");
    if (!c || json_is_null(c))
        return NULL;
    if (!json_is_string(c))
        return MSG_CONVERSATION_BAD;
    const char *why = conversation_check(json_string_value(c), json_string_length(c));
    if (!why)
        memcpy(m->conversation, json_string_value(c), CONVERSATION_ID_LEN + 1);
    return why;
}

/* "model": absent or null (the default), or a name (models.h checks it) */
static const char *read_model(struct client_message *m, json_t *root)
{
    json_t *v = json_object_get(root, "model");
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v))
        return MSG_MODEL_NOT_STRING;
    size_t len = json_string_length(v);
    if (len == 0 || len >= sizeof(m->model) || memchr(json_string_value(v), '\0', len))
        return MSG_MODEL_UNKNOWN;
    memcpy(m->model, json_string_value(v), len + 1);
    return NULL;
}

static const char *read_message(struct client_message *m, json_t *root, long max_message_bytes,
                                long max_image_bytes)
{
    if (!json_is_object(root))
        return MSG_NOT_JSON_OBJECT;
    const char *type = json_string_value(json_object_get(root, "type"));
    json_t *content = json_object_get(root, "content");
    if (type && (strcmp(type, "resume") == 0 || strcmp(type, "cancel") == 0))
        return read_request(m, root, type[0] == 'r' ? CLIENT_RESUME : CLIENT_CANCEL);
    if (type && strcmp(type, "auth") == 0)
        return read_auth(m, root);
    if (!type || (strcmp(type, "text") != 0 && strcmp(type, "image") != 0))
        return MSG_UNKNOWN_TYPE;
    const char *bad = read_conversation(m, root);
    if (!bad)
        bad = read_model(m, root);
    if (bad)
        return bad;
    if (!content)
        return MSG_CONTENT_MISSING;
    if (!json_is_string(content))
        return MSG_CONTENT_NOT_STRING;
    const char *s = json_string_value(content);
    size_t len = json_string_length(content);
    if (strcmp(type, "text") == 0) {
        m->kind = JOB_TEXT;
        const char *why = message_check_text(s, len, max_message_bytes);
        if (why)
            return why;
        return buf_append(&m->text, s, len) == 0 ? NULL : MSG_INTERNAL;
    }
    m->kind = JOB_IMAGE;
    if (is_blank(s, len))
        return MSG_IMAGE_EMPTY;
    const char *why = read_image(m, s, len, max_image_bytes);
    return why ? why : read_question(m, json_object_get(root, "question"), max_message_bytes);
}

const char *client_message_parse(struct client_message *m, const char *data, size_t len,
                                 long max_message_bytes, long max_image_bytes)
{
    memset(m, 0, sizeof(*m));
    json_error_t jerr;
    /* NUL is allowed by the parser so that the rules name it */
    json_t *root = json_loadb(data, len, JSON_ALLOW_NUL, &jerr);
    if (!root)
        return MSG_NOT_JSON_OBJECT;
    const char *why = read_message(m, root, max_message_bytes, max_image_bytes);
    json_decref(root);
    return why;
}

void client_message_free(struct client_message *m)
{
    buf_free(&m->text);
    buf_free(&m->image);
    m->mime = NULL;
}
