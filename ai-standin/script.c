/* script.c -- builds the stand-in's deterministic answer from a request body
 * and parses the @@directives hidden in the question. See script.h. */
#define _POSIX_C_SOURCE 200809L
#include "script.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "decimal.h"
#include "image.h"

#define MAX_DELAY_MS 600000L
#define MAX_COUNT 1000000000L

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* ------------------------------------------------------------------------
 * Directives
 * --------------------------------------------------------------------- */
/* (The answer: "Echo: <question>", or what it sees in an image; after
 * earlier turns of a conversation it adds "[history: N earlier turn(s), M
 * image(s); previous question: <the last earlier user message>]", so tests
 * see what the worker sent.) */

/* "CODE" or "CODE*N". */
static int parse_fail(const char *s, size_t n, struct directives *d)
{
    const char *star = memchr(s, '*', n);
    size_t code_len = star ? (size_t)(star - s) : n;
    long code, times = -1;
    if (decimal_parse(s, code_len, 599, &code) != 0 || code < 400)
        return -1;
    if (star && decimal_parse(star + 1, n - code_len - 1, MAX_COUNT, &times) != 0)
        return -1;
    d->fail_code = (int)code;
    d->fail_times = times;
    return 0;
}

static int name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(name, want, n) == 0;
}

/* Applies one word if it is a well-formed directive; returns 1 if it was. */
static int apply_directive(const char *w, size_t n, struct directives *d)
{
    if (n < 3 || w[0] != '@' || w[1] != '@')
        return 0;
    const char *name = w + 2;
    const char *eq = memchr(name, '=', n - 2);
    size_t name_len = eq ? (size_t)(eq - name) : n - 2;
    const char *val = eq ? eq + 1 : NULL;
    size_t val_len = eq ? n - 2 - name_len - 1 : 0;

    if (!val && name_is(name, name_len, "hang"))
        return d->hang = 1;
    if (!val && name_is(name, name_len, "endless"))
        return d->endless = 1;
    if (!val && name_is(name, name_len, "plain"))
        return d->plain = 1;
    if (!val && name_is(name, name_len, "nostreamoptions"))
        return d->no_stream_options = 400;
    if (name_is(name, name_len, "nostreamoptions") && val_len == 3 && memcmp(val, "422", 3) == 0)
        return (d->no_stream_options = 422) != 0;
    if (!val)
        return 0;
    if (name_is(name, name_len, "delay"))
        return decimal_parse(val, val_len, MAX_DELAY_MS, &d->delay_ms) == 0;
    if (name_is(name, name_len, "fail"))
        return parse_fail(val, val_len, d) == 0;
    if (name_is(name, name_len, "failfor") && val_len > 0 && val_len < sizeof(d->fail_for)) {
        memcpy(d->fail_for, val, val_len);
        d->fail_for[val_len] = '\0';
        return 1;
    }
    if (name_is(name, name_len, "cut"))
        return decimal_parse(val, val_len, MAX_COUNT, &d->cut) == 0;
    if (name_is(name, name_len, "malformed"))
        return decimal_parse(val, val_len, MAX_COUNT, &d->malformed) == 0;
    if (name_is(name, name_len, "error"))
        return decimal_parse(val, val_len, MAX_COUNT, &d->error) == 0;
    if (name_is(name, name_len, "tokens"))
        return decimal_parse(val, val_len, ANSWER_MAX_TOKENS, &d->tokens) == 0;
    return 0;
}

/* Copies q to clean without the directive words (and the whitespace after
 * them), trimmed at both ends. */
static int strip_directives(const char *q, size_t n, struct directives *d, struct buf *clean)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && is_space(q[i]))
            i++;
        size_t word = i;
        while (i < n && !is_space(q[i]))
            i++;
        size_t word_end = i;
        while (i < n && is_space(q[i]))
            i++;
        if (word_end > word && !apply_directive(q + word, word_end - word, d))
            if (buf_append(clean, q + word, i - word) != 0)
                return -1;
    }
    while (clean->len > 0 && is_space(clean->data[clean->len - 1]))
        clean->data[--clean->len] = '\0';
    return 0;
}

/* ------------------------------------------------------------------------
 * Request body
 * --------------------------------------------------------------------- */

/* Writes the message for the client into err; returns -1 to pass on. */
static int reject(struct buf *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int reject(struct buf *err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    buf_reset(err);
    if (buf_puts(err, msg) != 0)
        buf_reset(err); /* the caller falls back to a generic message */
    return -1;
}

static const char *image_kind(const unsigned char *p, size_t n)
{
    const char *mime = image_mime(p, n);
    if (!mime)
        return "unknown";
    if (strcmp(mime, "image/png") == 0)
        return "PNG";
    if (strcmp(mime, "image/jpeg") == 0)
        return "JPEG";
    if (strcmp(mime, "image/gif") == 0)
        return "GIF";
    if (strcmp(mime, "image/webp") == 0)
        return "WEBP";
    return "unknown";
}

/* Describes a base64 data URL into desc. Returns -1 if url is not one. */
static int describe_image(const char *url, struct buf *desc)
{
    const char *comma = strchr(url, ',');
    if (strncmp(url, "data:", 5) != 0 || !comma || comma - url < 12 ||
        strncmp(comma - 7, ";base64", 7) != 0)
        return -1;
    struct buf raw = BUF_INIT;
    int rc = base64_decode(&raw, comma + 1, strlen(comma + 1));
    if (rc == 0) {
        const char *kind = image_kind((const unsigned char *)raw.data, raw.len);
        rc = buf_printf(desc, "%sI see a %s image of %zu bytes.", desc->len ? " " : "",
                        kind, raw.len);
    }
    buf_free(&raw);
    return rc;
}

/* One element of an array content: appends text to question, images to desc. */
static int read_part(json_t *part, size_t mi, size_t pi, struct buf *question,
                     struct buf *desc, struct buf *err)
{
    const char *type = json_string_value(json_object_get(part, "type"));
    if (type && strcmp(type, "text") == 0) {
        json_t *text = json_object_get(part, "text");
        if (json_is_string(text)) {
            if ((question->len && buf_puts(question, " ") != 0) ||
                buf_append(question, json_string_value(text), json_string_length(text)) != 0)
                return reject(err, "Out of memory.");
            return 0;
        }
    } else if (type && strcmp(type, "image_url") == 0) {
        json_t *iu = json_object_get(part, "image_url");
        const char *url = json_is_string(iu) ? json_string_value(iu)
                                             : json_string_value(json_object_get(iu, "url"));
        if (url && describe_image(url, desc) == 0)
            return 0;
        return reject(err, "Invalid image in 'messages[%zu].content[%zu]': expected a "
                      "base64 data URL.", mi, pi);
    }
    return reject(err, "Invalid content part 'messages[%zu].content[%zu]'.", mi, pi);
}

/* The question and image descriptions of the user message at index mi. */
static int read_content(json_t *content, size_t mi, struct buf *question, struct buf *desc,
                        struct buf *err)
{
    if (json_is_string(content)) {
        if (buf_append(question, json_string_value(content), json_string_length(content)) != 0)
            return reject(err, "Out of memory.");
        return 0;
    }
    if (!json_is_array(content)) {
        return reject(err, "Invalid type for 'messages[%zu].content': expected a string or "
                      "an array of content parts.", mi);
    }
    size_t pi;
    json_t *part;
    json_array_foreach(content, pi, part) {
        if (read_part(part, mi, pi, question, desc, err) != 0)
            return -1;
    }
    return 0;
}

/* Checks messages and finds the last one with role "user" (-1: none). */
static int find_question(json_t *messages, long *user_index, struct buf *err)
{
    if (!messages)
        return reject(err, "Missing required parameter: 'messages'.");
    if (!json_is_array(messages))
        return reject(err, "Invalid type for 'messages': expected an array.");
    if (json_array_size(messages) == 0)
        return reject(err, "Invalid 'messages': empty array. Expected an array with "
                      "minimum length 1.");
    *user_index = -1;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!json_is_object(m) || !role)
            return reject(err, "Invalid 'messages[%zu]': expected an object with a 'role'.", i);
        if (strcmp(role, "user") == 0)
            *user_index = (long)i;
    }
    return 0;
}

static int read_options(struct answer *a, json_t *root, struct buf *err)
{
    json_t *model = json_object_get(root, "model");
    json_t *stream = json_object_get(root, "stream");
    if (model && !json_is_string(model))
        return reject(err, "Invalid type for 'model': expected a string.");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream))
        return reject(err, "Invalid type for 'stream': expected a boolean.");
    a->model = strdup(model ? json_string_value(model) : "ai-standin");
    if (!a->model)
        return reject(err, "Out of memory.");
    a->stream = json_is_true(stream);
    a->has_stream_options = json_object_get(root, "stream_options") != NULL;
    a->include_usage =
        json_is_true(json_object_get(json_object_get(root, "stream_options"), "include_usage"));
    return 0;
}

/* ------------------------------------------------------------------------
 * The answer
 * --------------------------------------------------------------------- */

/* Each token is a word plus the whitespace after it. */
static int tokenize(struct answer *a)
{
    const char *t = a->text.data;
    size_t n = a->text.len, count = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_space(t[i]) && (i == 0 || is_space(t[i - 1])))
            count++;
    if (count == 0)
        return 0;
    a->ends = malloc(count * sizeof(*a->ends));
    if (!a->ends)
        return -1;
    size_t i = 0;
    for (size_t k = 0; k < count; k++) {
        while (i < n && is_space(t[i]))
            i++;
        while (i < n && !is_space(t[i]))
            i++;
        while (i < n && is_space(t[i]))
            i++;
        a->ends[k] = i;
    }
    a->ntokens = count;
    return 0;
}

/* The conversation before the question, as the stand-in reports it. */
struct earlier {
    size_t turns;               /* user messages before the question */
    size_t images;              /* images in them */
    struct buf previous;        /* the text of the last of them */
};

static int build_text(struct answer *a, const struct buf *clean, const struct buf *desc,
                      const struct earlier *e)
{
    int rc;
    if (desc->len) {
        rc = buf_append(&a->text, desc->data, desc->len);
        if (rc == 0 && clean->len)
            rc = buf_printf(&a->text, " You asked: %s", clean->data);
    } else {
        rc = buf_printf(&a->text, "Echo: %s", clean->len ? clean->data : "");
    }
    if (rc == 0 && e->turns)
        rc = buf_printf(&a->text, " [history: %zu earlier turn(s), %zu image(s); previous "
                        "question: %s]", e->turns, e->images,
                        e->previous.data ? e->previous.data : "");
    return rc == 0 ? tokenize(a) : -1;
}

/* The user messages before the one at ui: how many, their images, and the
 * text of the last (read like the question, so a bad one is rejected). */
static int read_earlier(json_t *messages, long ui, struct earlier *e, struct buf *err)
{
    for (long i = 0; i < ui; i++) {
        json_t *m = json_array_get(messages, (size_t)i);
        if (strcmp(json_string_value(json_object_get(m, "role")), "user") != 0)
            continue;
        struct buf desc = BUF_INIT;
        buf_reset(&e->previous);
        int rc = read_content(json_object_get(m, "content"), (size_t)i, &e->previous, &desc, err);
        for (const char *p = desc.data; rc == 0 && p && (p = strstr(p, "I see a ")); p++)
            e->images++;
        buf_free(&desc);
        if (rc != 0 || buf_puts(&e->previous, "") != 0)
            return -1;
        e->turns++;
    }
    return 0;
}

static size_t count_words(const char *s)
{
    size_t n = 0;
    for (size_t i = 0; s[i]; i++)
        if (!is_space(s[i]) && (i == 0 || is_space(s[i - 1])))
            n++;
    return n;
}

static void directives_init(struct directives *d)
{
    d->delay_ms = d->fail_times = d->cut = d->malformed = d->error = d->tokens = -1;
    d->fail_code = 0;
    d->fail_for[0] = '\0';
    d->hang = d->endless = d->plain = d->no_stream_options = 0;
}

/* Everything after the JSON is parsed: question, directives, answer. */
static int answer_from_json(struct answer *a, json_t *root, struct buf *err)
{
    long ui = -1;
    if (!json_is_object(root))
        return reject(err, "The request body must be a JSON object.");
    if (find_question(json_object_get(root, "messages"), &ui, err) != 0 ||
        read_options(a, root, err) != 0)
        return -1;

    struct buf question = BUF_INIT, desc = BUF_INIT, clean = BUF_INIT;
    struct earlier earlier = {0, 0, BUF_INIT};
    int rc = 0;
    if (ui >= 0) {
        json_t *m = json_array_get(json_object_get(root, "messages"), (size_t)ui);
        rc = read_content(json_object_get(m, "content"), (size_t)ui, &question, &desc, err);
        if (rc == 0)
            rc = read_earlier(json_object_get(root, "messages"), ui, &earlier, err);
    }
    if (rc == 0 && (buf_puts(&question, "") != 0 ||
                    strip_directives(question.data, question.len, &a->dir, &clean) != 0 ||
                    buf_puts(&clean, "") != 0 ||
                    (a->dir.tokens < 0 && !a->dir.endless &&
                     build_text(a, &clean, &desc, &earlier) != 0))) {
        rc = reject(err, "Out of memory.");
    }
    if (rc == 0) {
        if (a->dir.tokens >= 0)
            a->ntokens = (size_t)a->dir.tokens;
        if (a->dir.endless)
            a->ntokens = ANSWER_ENDLESS;
        if (a->dir.plain)
            a->stream = 0;
        a->prompt_tokens = count_words(question.data) + 1;
        a->question = question.data; /* handed over */
        question.data = NULL;
    }
    buf_free(&question);
    buf_free(&desc);
    buf_free(&clean);
    buf_free(&earlier.previous);
    return rc;
}

int answer_parse(struct answer *a, const char *body, size_t len, struct buf *err)
{
    memset(a, 0, sizeof(*a));
    directives_init(&a->dir);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root)
        return reject(err, "We could not parse the JSON body of your request: %s", jerr.text);
    int rc = answer_from_json(a, root, err);
    json_decref(root);
    return rc;
}

const char *answer_token(const struct answer *a, size_t i, char scratch[32], size_t *len)
{
    if (a->dir.tokens >= 0 || a->dir.endless) {
        int n = snprintf(scratch, 32, i + 1 < a->ntokens ? "tok%zu " : "tok%zu", i);
        *len = n > 0 ? (size_t)n : 0;
        return scratch;
    }
    size_t start = i ? a->ends[i - 1] : 0;
    *len = a->ends[i] - start;
    return a->text.data + start;
}

int answer_text(const struct answer *a, struct buf *out)
{
    if (a->dir.endless)
        return -1;
    if (a->dir.tokens < 0)
        return buf_append(out, a->text.data ? a->text.data : "", a->text.len);
    char scratch[32];
    for (size_t i = 0; i < a->ntokens; i++) {
        size_t n;
        const char *t = answer_token(a, i, scratch, &n);
        if (buf_append(out, t, n) != 0)
            return -1;
    }
    return 0;
}

void answer_free(struct answer *a)
{
    free(a->model);
    free(a->question);
    free(a->ends);
    buf_free(&a->text);
    memset(a, 0, sizeof(*a));
}

/* ------------------------------------------------------------------------
 * @@fail=CODE*N bookkeeping
 * --------------------------------------------------------------------- */

static long *served_count(struct fail_table *t, const char *question)
{
    for (size_t i = 0; i < FAIL_TABLE_SIZE; i++)
        if (t->entry[i].question && strcmp(t->entry[i].question, question) == 0)
            return &t->entry[i].served;
    char *copy = strdup(question);
    if (!copy)
        return NULL;
    size_t slot = t->next;
    t->next = (t->next + 1) % FAIL_TABLE_SIZE;
    free(t->entry[slot].question);
    t->entry[slot].question = copy;
    t->entry[slot].served = 0;
    return &t->entry[slot].served;
}

int answer_should_fail(struct fail_table *t, const struct answer *a)
{
    if (a->dir.fail_code == 0 || (a->dir.fail_for[0] && strcmp(a->model, a->dir.fail_for) != 0))
        return 0;
    if (a->dir.fail_times < 0)
        return 1;
    long *served = served_count(t, a->question ? a->question : "");
    if (!served)
        return 1; /* out of memory: failing is what was asked for anyway */
    return ++*served <= a->dir.fail_times;
}

void fail_table_free(struct fail_table *t)
{
    for (size_t i = 0; i < FAIL_TABLE_SIZE; i++) {
        free(t->entry[i].question);
        t->entry[i].question = NULL;
    }
    t->next = 0;
}
