/* config.h -- the one configuration every program of the project reads.
 *
 * Precedence, lowest first: built-in defaults < settings.yaml (or --config
 * FILE) < environment (KEY upper-cased: PORT, AI_API_KEY, ...) < command-line
 * flags (--key-with-dashes VALUE or --key-with-dashes=VALUE).
 *
 * Every program accepts every key, so one settings.yaml serves the whole
 * system; each program uses the keys it needs. */
#ifndef AIMSG_CONFIG_H
#define AIMSG_CONFIG_H

#include <stddef.h>

/* A list option: a YAML sequence, or comma-separated in the environment,
 * in a flag or as a YAML string. Items are trimmed, empty ones dropped and
 * each checked when read; a later source replaces the whole list. */
struct config_list {
    size_t n;
    char **items;
};

struct config {
    /* public side */
    long port;                  /* web server port (lighttpd/apache) */
    char *bind;                 /* address the daemons listen on */
    long ws_port;               /* ws-push listens here */
    long ws_processes;          /* > 1: that many ws-push share ws_port */
    long standin_port;          /* built-in AI stand-in listens here */
    char *fcgi_listen;          /* fcgi-api: "" = socket from the web server */

    /* redis */
    char *redis_url;
    char *redis_prefix;
    long redis_timeout_ms;      /* a command unanswered this long: connection lost */
    long redis_wait_replicas;   /* a job is confirmed once on this many replicas (WAIT) */
    long redis_wait_timeout_ms; /* ... within this long, else refused */

    /* model */
    char *ai_base_url;          /* see config_ai_base_url() */
    char *ai_api_key;           /* or read from ai_api_key_file */
    char *ai_api_key_file;      /* "" = none */
    char *ai_model;
    struct config_list ai_models; /* models a client may ask for; the first is the default (common/models.h) */
    char *ai_fallback_base_url; /* "" = no fallback */
    char *ai_fallback_api_key;
    char *ai_fallback_model;    /* "" = the model asked for */
    char *ai_system_prompt;
    long ai_connect_timeout;    /* seconds */
    long ai_timeout;            /* seconds without a byte from the model */
    long ai_retries;            /* retries on 429/5xx/connect before first token */
    long ai_max_event_bytes;    /* data of one SSE event from the model */
    long ai_max_answer_bytes;   /* text of one answer */
    long ai_max_answer_seconds; /* time of one model call */

    /* worker */
    long worker_concurrency;
    long worker_claim_idle_ms;  /* pending this long with a dead owner -> claim */
    long worker_max_deliveries; /* deliveries before a job goes to dead letters */

    /* limits */
    long max_message_bytes;     /* text content / HTTP JSON body */
    long max_image_bytes;       /* decoded image */
    long image_ttl;             /* seconds an uploaded image is kept in Redis */
    long answer_ttl;            /* seconds an answer's frames are kept after its last */
    long answer_max_frames;     /* frames kept per answer */
    long conversation_ttl;      /* seconds a conversation is kept after it was last used */
    long conversation_max_turns; /* earlier turns kept and sent to the model */
    long conversation_max_bytes; /* bytes of earlier turns sent to the model */
    long conversation_max_queued; /* unanswered questions of one conversation */
    long usage_days;            /* days of token counts kept (usage.h) */

    /* users and access (common/auth.h, common/quota.h) */
    char *auth_jwt_secret;      /* HS256 key; "" = none (never logged) */
    char *auth_jwt_public_key;  /* PEM file: RS256/ES256 key; "" = none */
    char *auth_jwt_audience;    /* "" = aud not checked */
    char *auth_jwt_issuer;      /* "" = iss not checked */
    long auth_jwt_leeway;       /* seconds of clock skew allowed on exp/nbf */
    long ws_auth_timeout;       /* seconds a socket may take to send its token */
    struct config_list ws_allowed_origins; /* empty: any Origin */
    struct config_list trusted_proxies;    /* addresses/CIDRs whose X-Forwarded-For is believed */
    long rate_messages_per_minute;         /* per user (per address when auth is off); 0 = none */
    long max_answers_in_flight_per_user;   /* 0 = none */
    long ws_max_connections_per_user;      /* per user (per address when auth is off); 0 = none */

    /* ws-push */
    long ws_queue_frames;       /* per-connection send queue bound */
    long ws_ping_interval;      /* seconds */
    long ws_idle_timeout;       /* seconds without any frame from the client */
    long ws_partial_budget_bytes; /* all half-received client messages of an instance */
    long presence_ttl;          /* seconds */
    char *instance_id;          /* "" = hostname-pid */

    /* standin */
    long standin_delay_ms;      /* default delay between tokens */

    long metrics_interval_ms;   /* common/metrics.h */

    /* logging */
    char *log_dir;
    char *log_level;
    char *log_format;           /* text or json */

    char *config_file;          /* which file was read ("" = none) */
};

/* What a program is called and says about itself in --help. */
struct config_usage {
    const char *program;
    const char *summary;
};

/* Fills cfg from defaults, file, environment and argv. On error prints a
 * message naming the source (file:line and key, variable, or flag) to stderr
 * and returns -1. Returns 1 when --help or --print-config was printed (the
 * caller exits 0), else 0.
 * Positional arguments are an error. */
int config_load(struct config *cfg, int argc, char **argv,
                const struct config_usage *usage);

/* The same, without argv and environment: for tests. */
int config_load_file(struct config *cfg, const char *path);

void config_free(struct config *cfg);

/* Writes the model endpoint actually used into buf and returns buf:
 * ai_base_url; when that is empty, OpenAI if an API key is set, else the
 * built-in stand-in. */
const char *config_ai_base_url(const struct config *cfg, char *buf, size_t len);
/* An endpoint URL's userinfo (https://user:password@host/...): 0 with where
 * it starts and its length (up to the '@'), -1 when it has none. It is a
 * secret: the programs mask it in every log line (program_start) and
 * --print-config shows the URL as config_url_redacted does. */
int config_url_userinfo(const char *url, size_t *at, size_t *len);
/* url with its userinfo shown as ***; returns buf. */
const char *config_url_redacted(const char *url, char *buf, size_t len);
/* 1 when the model is the built-in stand-in (no ai_base_url, no ai_api_key). */
int config_ai_is_standin(const struct config *cfg);

/* The largest HTTP request body fcgi-api takes: an image of max_image_bytes
 * in a multipart body, with room for the part headers and text fields
 * around it. The web server configs (deploy/) get their body limit from it
 * (--print-config prints it as http_body_max). */
#define CONFIG_MULTIPART_OVERHEAD (64 * 1024)
long config_http_body_max(const struct config *cfg);

#endif
