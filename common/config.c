/* config.c -- defaults < settings.yaml (libyaml) < environment < flags.
 *
 * All keys live in one table; the YAML keys, environment variables, flags and
 * --help text are all derived from it, so they cannot drift apart. */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "keys.h"
#include "origin.h"
#include "proxy.h"
#include "redis_conn.h"

enum opt_type { OPT_INT, OPT_STR, OPT_LIST };

#define API_KEY_MAX 4096

struct option_def {
    const char *key;
    enum opt_type type;
    size_t offset;
    const char *def;
    long min, max;              /* OPT_STR: max = longest value in bytes,
                                 * OPT_LIST: longest item */
    const char *help;
    /* OPT_LIST: NULL when item may follow the items before it, else why not */
    const char *(*check_item)(const char *item, const struct config_list *before);
    int secret;                 /* OPT_STR: --print-config says only whether it is set */
};

/* Items of one list option, at most: a bound on what a file can make us hold. */
#define LIST_MAX_ITEMS 1024

#define INT_OPT(k, d, lo, hi, h) {#k, OPT_INT, offsetof(struct config, k), d, lo, hi, h, NULL, 0}
#define STR_OPT(k, d, max, h)    {#k, OPT_STR, offsetof(struct config, k), d, 0, max, h, NULL, 0}
#define SECRET_OPT(k, d, max, h) {#k, OPT_STR, offsetof(struct config, k), d, 0, max, h, NULL, 1}
#define LIST_OPT(k, d, max, check, h) \
    {#k, OPT_LIST, offsetof(struct config, k), d, 0, max, h, check, 0}

static const char *check_origin(const char *item, const struct config_list *before)
{
    if (before->n > 0 && (strcmp(item, "*") == 0 || strcmp(before->items[0], "*") == 0))
        return "'*' (any origin) must be the only item";
    return origin_pattern_check(item);
}

static const char *check_proxy(const char *item, const struct config_list *before)
{
    struct proxy_net net;
    (void)before;
    return proxy_net_parse(item, &net);
}

static const char *check_model(const char *item, const struct config_list *before)
{
    for (const char *p = item; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return "a model name has no control characters";
    for (size_t i = 0; i < before->n; i++)
        if (strcmp(before->items[i], item) == 0)
            return "a model is listed twice";
    return NULL;
}

static const struct option_def options[] = {
    INT_OPT(port, "8080", 1, 65535, "public port of the web server"),
    STR_OPT(bind, "127.0.0.1", 255, "address ws-push and the stand-in listen on"),
    INT_OPT(ws_port, "8081", 1, 65535, "port ws-push listens on"),
    INT_OPT(ws_processes, "1", 1, 64, "ws-push processes sharing ws_port (SO_REUSEPORT; make run starts this many): more than 1 spreads the WebSocket clients over the cores"),
    INT_OPT(standin_port, "8082", 1, 65535, "port the built-in AI stand-in listens on"),
    STR_OPT(fcgi_listen, "", 107, "fcgi-api: host:port or socket path to listen on (empty: socket passed by the web server)"),
    STR_OPT(redis_url, "redis://127.0.0.1:6380/0", 1024, "Redis to use: redis://[:password@]host[:port][/db], unix:/path, or a master behind Sentinel: sentinel://[:password@]host[:port],host[:port].../master-name[/db][?sentinel_password=S]"),
    STR_OPT(redis_prefix, "aimsg:", KEYS_MAX_PREFIX, "prefix of every Redis key and channel"),
    INT_OPT(redis_timeout_ms, "3000", 100, 600000, "a Redis command unanswered this long counts as a lost connection"),
    INT_OPT(redis_wait_replicas, "0", 0, 100, "a new message is confirmed (HTTP 200, queued frame) only once this many replicas have it (WAIT), else refused (503, error frame); 0: at once"),
    INT_OPT(redis_wait_timeout_ms, "1000", 1, 60000, "how long a new message waits for redis_wait_replicas replicas before it is refused"),
    STR_OPT(ai_base_url, "", 400, "OpenAI-compatible base URL (empty: OpenAI when ai_api_key is set, else the built-in stand-in)"),
    SECRET_OPT(ai_api_key, "", API_KEY_MAX, "API key sent as Bearer token (never logged); a flag is visible in ps: use AI_API_KEY or ai_api_key_file"),
    STR_OPT(ai_api_key_file, "", 4096, "file whose first line is the API key (instead of ai_api_key)"),
    STR_OPT(ai_model, "gpt-4o-mini", 256, "model name sent to the endpoint"),
    LIST_OPT(ai_models, "", 256, check_model, "models a client may ask for with \"model\" (the first is the default; empty: ai_model only)"),
    STR_OPT(ai_fallback_base_url, "", 400, "OpenAI-compatible base URL asked when ai_base_url fails before the first token (connect error, 5xx, 429, after ai_retries) (empty: none)"),
    SECRET_OPT(ai_fallback_api_key, "", API_KEY_MAX, "API key of ai_fallback_base_url (never logged)"),
    STR_OPT(ai_fallback_model, "", 256, "model asked of ai_fallback_base_url (empty: the one asked of the primary)"),
    STR_OPT(ai_system_prompt, "You are a helpful assistant.", 65536, "system prompt (empty: none)"),
    INT_OPT(ai_connect_timeout, "10", 1, 600, "seconds to connect to the model"),
    INT_OPT(ai_timeout, "60", 1, 3600, "seconds the model may stay silent mid-answer"),
    INT_OPT(ai_retries, "3", 0, 20, "retries on 429/5xx/connect errors before the first token"),
    INT_OPT(ai_max_event_bytes, "1048576", 1024, 268435456, "largest event in the model's answer stream, in bytes"),
    INT_OPT(ai_max_answer_bytes, "1048576", 1024, 268435456, "longest answer in bytes; a longer one is ended with an error"),
    INT_OPT(ai_max_answer_seconds, "600", 1, 86400, "longest a model call may take, in seconds; then it is ended with an error"),
    INT_OPT(worker_concurrency, "64", 1, 100000, "answers one worker streams at once"),
    INT_OPT(worker_claim_idle_ms, "30000", 100, 86400000, "ms a job may stay pending before another worker claims it"),
    INT_OPT(worker_max_deliveries, "3", 1, 100, "deliveries before a job goes to the dead-letter stream"),
    INT_OPT(max_message_bytes, "65536", 16, 16777216, "largest text message / JSON body in bytes"),
    INT_OPT(max_image_bytes, "10485760", 1024, 268435456, "largest image in bytes (decoded)"),
    INT_OPT(image_ttl, "3600", 10, 604800, "seconds an uploaded image is kept in Redis"),
    INT_OPT(answer_ttl, "300", 10, 604800, "seconds an answer's frames stay in Redis after its last (for catch-up and resume)"),
    INT_OPT(conversation_ttl, "86400", 60, 31536000, "seconds a conversation's turns stay in Redis after it was last used"),
    INT_OPT(conversation_max_turns, "20", 1, 100000, "earlier turns of a conversation kept and sent to the model with a new question (the oldest are dropped)"),
    INT_OPT(conversation_max_queued, "4", 1, 10000, "unanswered questions a conversation may have at once; one more is refused (429)"),
    INT_OPT(conversation_max_bytes, "65536", 1, 268435456, "bytes (questions and answers) of earlier turns sent to the model at most; the oldest whole turns are dropped to fit"),
    INT_OPT(usage_days, "7", 1, 366, "days the per-user token counts are kept in Redis and shown by GET /api/usage"),
    INT_OPT(answer_max_frames, "10000", 100, 10000000, "frames kept per answer in its Redis stream"),
    SECRET_OPT(auth_jwt_secret, "", 4096, "HS256 secret: when set (or auth_jwt_public_key), every request needs a token (never logged)"),
    STR_OPT(auth_jwt_public_key, "", 4096, "PEM file of the RS256/ES256 public key tokens are signed for"),
    STR_OPT(auth_jwt_audience, "", 256, "when set, a token's aud must name it"),
    STR_OPT(auth_jwt_issuer, "", 256, "when set, a token's iss must be it"),
    INT_OPT(auth_jwt_leeway, "30", 0, 600, "seconds of clock skew allowed on a token's exp and nbf"),
    INT_OPT(ws_auth_timeout, "10", 1, 300, "seconds a WebSocket without ?token= has to send its auth frame"),
    LIST_OPT(ws_allowed_origins, "", 300, check_origin, "pages allowed to open a WebSocket: https://host[:port], *.domain, https://*.domain[:port], null, or * alone = any (discouraged) (empty: any; a request without Origin always passes)"),
    LIST_OPT(trusted_proxies, "127.0.0.1,::1", 64, check_proxy, "addresses/CIDR networks whose X-Forwarded-For is believed (default: the web server on this host)"),
    INT_OPT(rate_messages_per_minute, "0", 0, 1000000, "messages per user (per address when auth is off) in any 60 s, HTTP and WebSocket together (0: no limit)"),
    INT_OPT(max_answers_in_flight_per_user, "0", 0, 100000, "answers one user may have queued or streaming at once (0: no limit)"),
    INT_OPT(ws_max_connections_per_user, "0", 0, 1000000, "WebSockets one user (one address when auth is off) may hold over all ws-push instances (0: no limit)"),
    INT_OPT(ws_queue_frames, "4096", 16, 1000000, "frames queued per WebSocket before it is closed as too slow"),
    INT_OPT(ws_ping_interval, "30", 1, 3600, "seconds between WebSocket pings"),
    INT_OPT(ws_idle_timeout, "120", 2, 86400, "seconds a silent WebSocket is kept"),
    INT_OPT(ws_partial_budget_bytes, "67108864", 65536, 1099511627776, "bytes the half-received messages of all of one ws-push's clients may hold; beyond it the largest are closed (1009)"),
    INT_OPT(presence_ttl, "15", 3, 3600, "seconds a ws-push presence key lives without refresh"),
    STR_OPT(instance_id, "", 127, "ws-push instance name (empty: hostname-pid)"),
    INT_OPT(standin_delay_ms, "20", 0, 60000, "stand-in: default ms between tokens"),
    STR_OPT(log_dir, "logs", 400, "directory of the daily log files YYYY-MM-DD.log"),
    INT_OPT(metrics_interval_ms, "5000", 100, 300000, "ms between two publications of a process' metrics to Redis (they expire after three)"),
    STR_OPT(log_level, "info", 16, "debug, info, warn or error"),
    STR_OPT(log_format, "text", 8, "text (one line: time level program[pid] message) or json (one object per line)"),
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static long *int_field(struct config *cfg, const struct option_def *o)
{
    return (long *)((char *)cfg + o->offset);
}

static char **str_field(struct config *cfg, const struct option_def *o)
{
    return (char **)((char *)cfg + o->offset);
}

static struct config_list *list_field(struct config *cfg, const struct option_def *o)
{
    return (struct config_list *)((char *)cfg + o->offset);
}

static void list_free(struct config_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Appends the len bytes at text, trimmed, to l after checking them; an
 * empty item is dropped. */
static int list_add(struct config_list *l, const struct option_def *o, const char *text,
                    size_t len, char *err, size_t errlen)
{
    while (len > 0 && isspace((unsigned char)text[0])) {
        text++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    if (len == 0)
        return 0;
    if (len > (size_t)o->max) {
        snprintf(err, errlen, "item '%.40s...': too long: %zu bytes, at most %ld", text, len,
                 o->max);
        return -1;
    }
    if (l->n >= LIST_MAX_ITEMS) {
        snprintf(err, errlen, "more than %d items", LIST_MAX_ITEMS);
        return -1;
    }
    char *item = strndup(text, len);
    char **items = item ? realloc(l->items, (l->n + 1) * sizeof(*items)) : NULL;
    if (!items) {
        free(item);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    l->items = items;
    const char *why = o->check_item(item, l);
    if (why) {
        snprintf(err, errlen, "item '%s': %s", item, why);
        free(item);
        return -1;
    }
    l->items[l->n++] = item;
    return 0;
}

/* A later source replaces the whole list. */
static void list_replace(struct config *cfg, const struct option_def *o, struct config_list *l)
{
    list_free(list_field(cfg, o));
    *list_field(cfg, o) = *l;
    l->n = 0;
    l->items = NULL;
}

/* "a, b,c": comma-separated items. */
static int set_list(struct config *cfg, const struct option_def *o, const char *value,
                    char *err, size_t errlen)
{
    struct config_list l = {0, NULL};
    for (;;) {
        size_t len = strcspn(value, ",");
        if (list_add(&l, o, value, len, err, errlen) != 0) {
            list_free(&l);
            return -1;
        }
        if (value[len] == '\0')
            break;
        value += len + 1;
    }
    list_replace(cfg, o, &l);
    return 0;
}

static const struct option_def *find_option(const char *key)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strcmp(options[i].key, key) == 0)
            return &options[i];
    return NULL;
}

/* Sets one option from text; on error writes the problem into err. */
static int set_option(struct config *cfg, const struct option_def *o,
                      const char *value, char *err, size_t errlen)
{
    if (o->type == OPT_LIST)
        return set_list(cfg, o, value, err, errlen);
    if (o->type == OPT_STR) {
        size_t len = strlen(value);
        if (len > (size_t)o->max) {
            /* the value itself is not shown: it may be the API key */
            snprintf(err, errlen, "too long: %zu bytes, at most %ld", len, o->max);
            return -1;
        }
        char *copy = strdup(value);
        if (!copy) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(*str_field(cfg, o));
        *str_field(cfg, o) = copy;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end != '\0') {
        snprintf(err, errlen, "expected an integer, got '%s'", value);
        return -1;
    }
    if (v < o->min || v > o->max) {
        snprintf(err, errlen, "%ld is out of range %ld..%ld", v, o->min, o->max);
        return -1;
    }
    *int_field(cfg, o) = v;
    return 0;
}

static void set_defaults(struct config *cfg)
{
    char err[128];
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NOPTIONS; i++)
        if (set_option(cfg, &options[i], options[i].def, err, sizeof(err)) != 0)
            abort(); /* a bad default is a programming error */
    cfg->config_file = strdup("");
}

/* Where load_yaml is in the file. */
struct yaml_state {
    const char *path;
    char key[128];              /* the key whose value comes next */
    int have_key;
    int depth;                  /* mappings open */
    int in_list;                /* inside the sequence of a list option */
    struct config_list list;    /* its items so far */
};

/* The scalar value of key. */
static int yaml_value(struct config *cfg, struct yaml_state *y, const yaml_event_t *ev,
                      size_t line)
{
    char err[256];
    const char *text = (const char *)ev->data.scalar.value;
    const struct option_def *o = find_option(y->key);
    int plain_null = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                     (strcmp(text, "~") == 0 || strcmp(text, "null") == 0 || text[0] == '\0');
    if (plain_null && o->type != OPT_INT)
        text = "";
    if (plain_null && o->type == OPT_INT) {
        fprintf(stderr, "%s:%zu: key '%s': expected an integer, got nothing\n", y->path, line,
                y->key);
        return -1;
    }
    if (set_option(cfg, o, text, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s:%zu: key '%s': %s\n", y->path, line, y->key, err);
        return -1;
    }
    y->have_key = 0;
    return 0;
}

/* One item of a list option's sequence. In a sequence "null" is the text
 * null (an origin); only ~ and empty items are nothing. */
static int yaml_list_item(struct yaml_state *y, const yaml_event_t *ev, size_t line)
{
    char err[256];
    const char *text = (const char *)ev->data.scalar.value;
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp(text, "~") == 0)
        return 0;
    if (list_add(&y->list, find_option(y->key), text, strlen(text), err, sizeof(err)) != 0) {
        fprintf(stderr, "%s:%zu: key '%s': %s\n", y->path, line, y->key, err);
        return -1;
    }
    return 0;
}

static int yaml_key(struct yaml_state *y, const char *text, size_t line)
{
    snprintf(y->key, sizeof(y->key), "%s", text);
    if (!find_option(y->key)) {
        fprintf(stderr, "%s:%zu: unknown key '%s'\n", y->path, line, y->key);
        return -1;
    }
    y->have_key = 1;
    return 0;
}

/* A sequence: the value of a list option, else an error. */
static int yaml_sequence(struct yaml_state *y, size_t line)
{
    if (y->in_list) {
        fprintf(stderr, "%s:%zu: key '%s': expected a list of plain values, got a list in it\n",
                y->path, line, y->key);
        return -1;
    }
    if (!y->have_key || find_option(y->key)->type != OPT_LIST) {
        fprintf(stderr, "%s:%zu: %s%s%s: expected a plain value, got a list\n", y->path, line,
                y->have_key ? "key '" : "top level", y->have_key ? y->key : "",
                y->have_key ? "'" : "");
        return -1;
    }
    y->in_list = 1;
    return 0;
}

/* One parser event of settings.yaml. */
static int yaml_event(struct config *cfg, struct yaml_state *y, const yaml_event_t *ev)
{
    size_t line = ev->start_mark.line + 1;
    switch (ev->type) {
    case YAML_MAPPING_START_EVENT:
        if (y->depth > 0 || y->have_key) {
            fprintf(stderr, "%s:%zu: key '%s': expected a %s, got a mapping\n", y->path, line,
                    y->key, y->in_list ? "list of plain values" : "plain value");
            return -1;
        }
        y->depth++;
        return 0;
    case YAML_MAPPING_END_EVENT:
        y->depth--;
        return 0;
    case YAML_SEQUENCE_START_EVENT:
        return yaml_sequence(y, line);
    case YAML_SEQUENCE_END_EVENT:
        list_replace(cfg, find_option(y->key), &y->list);
        y->in_list = 0;
        y->have_key = 0;
        return 0;
    case YAML_ALIAS_EVENT:
        /* a plain *.example.com is an alias to YAML */
        fprintf(stderr, "%s:%zu: aliases are not supported (a value starting with * must be "
                        "quoted: \"*.example.com\")\n", y->path, line);
        return -1;
    case YAML_SCALAR_EVENT:
        if (y->depth == 0) {
            fprintf(stderr, "%s:%zu: expected a mapping of keys to values\n", y->path, line);
            return -1;
        }
        if (y->in_list)
            return yaml_list_item(y, ev, line);
        if (!y->have_key)
            return yaml_key(y, (const char *)ev->data.scalar.value, line);
        return yaml_value(cfg, y, ev, line);
    default:
        return 0;
    }
}

/* settings.yaml: a single mapping of keys to plain values, or to
 * sequences of plain values for list options. */
static int load_yaml(struct config *cfg, const char *path, FILE *f)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    struct yaml_state y;
    int rc = -1;

    memset(&y, 0, sizeof(y));
    y.path = path;
    if (!yaml_parser_initialize(&parser)) {
        fprintf(stderr, "%s: cannot initialise YAML parser\n", path);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            /* a plain *.example.com reads as an alias to YAML */
            int alias = parser.context && strcmp(parser.context, "while scanning an alias") == 0;
            fprintf(stderr, "%s:%zu: invalid YAML: %s%s\n", path,
                    parser.problem_mark.line + 1,
                    parser.problem ? parser.problem : "parse error",
                    alias ? " (a value starting with * must be quoted: \"*.example.com\")" : "");
            goto out;
        }
        int done = ev.type == YAML_STREAM_END_EVENT;
        int failed = yaml_event(cfg, &y, &ev) != 0;
        yaml_event_delete(&ev);
        if (failed)
            goto out;
        if (done)
            break;
    }
    rc = 0;
out:
    list_free(&y.list);
    yaml_parser_delete(&parser);
    return rc;
}

static int load_file(struct config *cfg, const char *path, int must_exist)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (!must_exist && errno == ENOENT)
            return 0;
        fprintf(stderr, "%s: cannot read config file: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = load_yaml(cfg, path, f);
    fclose(f);
    if (rc == 0) {
        free(cfg->config_file);
        cfg->config_file = strdup(path);
        if (!cfg->config_file)
            return -1;
    }
    return rc;
}

static void env_name(const char *key, char *out, size_t len)
{
    size_t i;
    for (i = 0; key[i] && i + 1 < len; i++)
        out[i] = (char)toupper((unsigned char)key[i]);
    out[i] = '\0';
}

static int load_env(struct config *cfg)
{
    char name[64], err[256];
    for (size_t i = 0; i < NOPTIONS; i++) {
        env_name(options[i].key, name, sizeof(name));
        const char *v = getenv(name);
        if (!v)
            continue;
        if (set_option(cfg, &options[i], v, err, sizeof(err)) != 0) {
            fprintf(stderr, "environment %s: %s\n", name, err);
            return -1;
        }
    }
    return 0;
}

/* "--ai-api-key" -> option "ai_api_key" */
static const struct option_def *flag_option(const char *flag)
{
    char key[64];
    size_t i;
    for (i = 0; flag[i] && flag[i] != '=' && i + 1 < sizeof(key); i++)
        key[i] = flag[i] == '-' ? '_' : flag[i];
    key[i] = '\0';
    return find_option(key);
}

static void print_help(const struct config_usage *u)
{
    char name[64];
    printf("Usage: %s [--config FILE] [--OPTION VALUE]...\n%s\n\n", u->program, u->summary);
    printf("Every option can be set in the config file (key), the environment (KEY)\n"
           "or on the command line (--key); the command line wins, then the\n"
           "environment, then the file. A list (A,B,..) is comma-separated, or a\n"
           "YAML list in the file; a later source replaces the whole list.\n\n");
    printf("  %-28s %s\n", "--config FILE", "YAML settings file (default: settings.yaml if present)");
    printf("  %-28s %s\n", "--help", "print this help and exit");
    printf("  %-28s %s\n", "--print-config", "print the settings in effect (key='value') and exit");
    for (size_t i = 0; i < NOPTIONS; i++) {
        char flag[64];
        size_t j;
        for (j = 0; options[i].key[j] && j + 1 < sizeof(flag); j++)
            flag[j] = options[i].key[j] == '_' ? '-' : options[i].key[j];
        flag[j] = '\0';
        env_name(options[i].key, name, sizeof(name));
        char left[96];
        const char *arg = options[i].type == OPT_INT ? "N" : options[i].type == OPT_STR ? "TEXT" : "A,B,..";
        snprintf(left, sizeof(left), "--%s %s", flag, arg);
        printf("  %-28s %s\n  %-28s [env %s, default '%s']\n", left, options[i].help, "",
               name, options[i].def);
    }
}

static void print_quoted(const char *key, const char *v)
{
    printf("%s='", key);
    for (; *v; v++)
        fputs(*v == '\'' ? "'\\''" : (char[2]){*v, 0}, stdout);
    printf("'\n");
}

/* Comma-separated: no item holds a comma (the checks refuse it). */
static void print_list(const char *key, const struct config_list *l)
{
    size_t len = 1;
    for (size_t i = 0; i < l->n; i++)
        len += strlen(l->items[i]) + 1;
    char *joined = malloc(len);
    if (!joined) {
        printf("%s='(out of memory)'\n", key);
        return;
    }
    char *p = joined;
    for (size_t i = 0; i < l->n; i++) {
        if (i > 0)
            *p++ = ',';
        size_t n = strlen(l->items[i]);
        memcpy(p, l->items[i], n);
        p += n;
    }
    *p = '\0';
    print_quoted(key, joined);
    free(joined);
}

/* What follows from the settings, for the scripts (scripts/run.sh,
 * scripts/render-config.sh): derived here only, never again in shell. */
static void print_derived(const struct config *cfg)
{
    char url[1024], err[256];
    char shown[sizeof(url)];
    print_quoted("ai_endpoint",
                 config_url_redacted(config_ai_base_url(cfg, url, sizeof(url)), shown, sizeof(shown)));
    printf("ai_standin=%d\n", config_ai_is_standin(cfg));
    struct redis_addr a;
    if (redis_addr_parse(&a, cfg->redis_url, err, sizeof(err)) != 0)
        memset(&a, 0, sizeof(a));
    /* make run starts a Redis of its own only for a redis:// on this host */
    int own = !a.is_unix && !a.nsentinels && (strncmp(a.host, "127.", 4) == 0 ||
                                                strcmp(a.host, "localhost") == 0);
    printf("redis_own=%d\n", own);
    print_quoted("redis_host", a.is_unix ? "" : a.host);
    print_quoted("redis_socket", a.is_unix ? a.host : "");
    printf("redis_port=%d\n", a.is_unix || a.nsentinels ? 0 : a.port);
    printf("http_body_max=%ld\n", config_http_body_max(cfg));
}

/* key='value' lines a shell can eval; a secret (the API key, the token
 * secret) only says whether it is set, redis_url shows no password, the
 * model endpoints no userinfo. The settings, then what follows
 * from them. */
static void print_config(struct config *cfg)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct option_def *o = &options[i];
        if (o->type == OPT_INT) {
            printf("%s=%ld\n", o->key, *int_field(cfg, o));
            continue;
        }
        if (o->type == OPT_LIST) {
            print_list(o->key, list_field(cfg, o));
            continue;
        }
        const char *v = *str_field(cfg, o);
        char shown[1024];
        if (o->secret && v[0])
            v = "(set)";
        else if (str_field(cfg, o) == &cfg->redis_url)
            v = redis_url_redacted(v, shown, sizeof(shown));
        else if (str_field(cfg, o) == &cfg->ai_base_url ||
                 str_field(cfg, o) == &cfg->ai_fallback_base_url)
            v = config_url_redacted(v, shown, sizeof(shown));
        print_quoted(o->key, v);
    }
    print_quoted("config_file", cfg->config_file);
    print_derived(cfg);
}

/* Finds --config, --help and --print-config before anything else is read. */
static int scan_early_flags(int argc, char **argv, const char **config_path, int *help)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *help = 1;
        } else if (strcmp(argv[i], "--print-config") == 0) {
            *help = 2;
        } else if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "--config: missing value\n");
                return -1;
            }
            *config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            *config_path = argv[i] + 9;
        }
    }
    return 0;
}

static int load_flags(struct config *cfg, int argc, char **argv)
{
    char err[256];
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(arg, "--config=", 9) == 0 || strcmp(arg, "--print-config") == 0)
            continue;
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "%s: unexpected argument (options start with --; see --help)\n", arg);
            return -1;
        }
        const struct option_def *o = flag_option(arg + 2);
        const char *eq = strchr(arg, '=');
        if (!o) {
            fprintf(stderr, "%.*s: unknown option (see --help)\n",
                    eq ? (int)(eq - arg) : (int)strlen(arg), arg);
            return -1;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "%s: missing value\n", arg);
            return -1;
        }
        if (set_option(cfg, o, value, err, sizeof(err)) != 0) {
            fprintf(stderr, "%.*s: %s\n", eq ? (int)(eq - arg) : (int)strlen(arg), arg, err);
            return -1;
        }
    }
    return 0;
}

/* ai_api_key_file: the key is the file's first line, so that it need not be
 * on the command line (visible in ps) nor in the environment. */
static int load_api_key_file(struct config *cfg)
{
    const char *path = cfg->ai_api_key_file;
    if (!path[0])
        return 0;
    if (cfg->ai_api_key[0]) {
        fprintf(stderr, "ai_api_key_file: ai_api_key is set as well; set only one of them\n");
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "ai_api_key_file '%s': cannot read: %s\n", path, strerror(errno));
        return -1;
    }
    char key[API_KEY_MAX + 2];
    size_t n = fread(key, 1, sizeof(key) - 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        fprintf(stderr, "ai_api_key_file '%s': cannot read\n", path);
        return -1;
    }
    key[n] = '\0';
    n = strcspn(key, "\r\n");
    while (n > 0 && isspace((unsigned char)key[n - 1]))
        n--;
    key[n] = '\0';
    char err[128];
    if (n == 0 || set_option(cfg, find_option("ai_api_key"), key, err, sizeof(err)) != 0) {
        fprintf(stderr, "ai_api_key_file '%s': %s\n", path, n ? err : "holds no key");
        return -1;
    }
    return 0;
}

static int one_of(const char *key, const char *value, const char *const *allowed, size_t n,
                  const char *listed)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(value, allowed[i]) == 0)
            return 0;
    fprintf(stderr, "%s: '%s' is not one of %s\n", key, value, listed);
    return -1;
}

static int check_values(const struct config *cfg)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    static const char *const formats[] = {"text", "json"};
    return one_of("log_level", cfg->log_level, levels, 4, "debug, info, warn, error") |
           one_of("log_format", cfg->log_format, formats, 2, "text, json");
}

int config_load(struct config *cfg, int argc, char **argv, const struct config_usage *usage)
{
    const char *path = NULL;
    int help = 0;

    set_defaults(cfg);
    if (scan_early_flags(argc, argv, &path, &help) != 0)
        goto fail;
    if (help == 1) {
        print_help(usage);
        config_free(cfg);
        return 1;
    }
    if (!path)
        path = getenv("CONFIG");
    if (load_file(cfg, path ? path : "settings.yaml", path != NULL) != 0)
        goto fail;
    if (load_env(cfg) != 0 || load_flags(cfg, argc, argv) != 0 || load_api_key_file(cfg) != 0 ||
        check_values(cfg) != 0)
        goto fail;
    if (help == 2) {
        print_config(cfg);
        config_free(cfg);
        return 1;
    }
    return 0;
fail:
    config_free(cfg);
    return -1;
}

int config_load_file(struct config *cfg, const char *path)
{
    set_defaults(cfg);
    if (load_file(cfg, path, 1) != 0 || load_api_key_file(cfg) != 0 || check_values(cfg) != 0) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (options[i].type == OPT_STR) {
            free(*str_field(cfg, &options[i]));
            *str_field(cfg, &options[i]) = NULL;
        } else if (options[i].type == OPT_LIST) {
            list_free(list_field(cfg, &options[i]));
        }
    }
    free(cfg->config_file);
    cfg->config_file = NULL;
}

int config_ai_is_standin(const struct config *cfg)
{
    return !cfg->ai_base_url[0] && !cfg->ai_api_key[0];
}

const char *config_ai_base_url(const struct config *cfg, char *buf, size_t len)
{
    if (cfg->ai_base_url[0])
        snprintf(buf, len, "%s", cfg->ai_base_url);
    else if (!config_ai_is_standin(cfg))
        snprintf(buf, len, "https://api.openai.com/v1");
    else
        snprintf(buf, len, "http://127.0.0.1:%ld/v1", cfg->standin_port);
    return buf;
}

int config_url_userinfo(const char *url, size_t *at, size_t *len)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url; /* without a scheme (curl guesses one) it starts with the authority */
    size_t authority = strcspn(p, "/?#");
    const char *end = NULL;
    for (const char *q = p; q < p + authority; q++)
        if (*q == '@')
            end = q; /* the last one: a password may hold an '@' of its own */
    if (!end || end == p)
        return -1;
    *at = (size_t)(p - url);
    *len = (size_t)(end - p);
    return 0;
}

const char *config_url_redacted(const char *url, char *buf, size_t len)
{
    size_t at, n;
    if (config_url_userinfo(url, &at, &n) != 0)
        snprintf(buf, len, "%s", url);
    else
        snprintf(buf, len, "%.*s***%s", (int)at, url, url + at + n);
    return buf;
}

long config_http_body_max(const struct config *cfg)
{
    return cfg->max_image_bytes + CONFIG_MULTIPART_OVERHEAD;
}
