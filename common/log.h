/* log.h -- one line per event: time, level, program[pid], message.
 *
 * A message about a job starts with "job <id>: " (every program writes it
 * so), so that `grep -r <id> logs` shows the job's whole life. With
 * log_format json each line is one JSON object instead:
 *   {"time":"2026-12-01T10:00:00.123Z","level":"info","program":"worker",
 *    "pid":42,"job":"<id>","message":"..."}   ("job" only when there is one)
 *
 * Lines go to stderr and to LOG_DIR/YYYY-MM-DD.log (a new file when the UTC
 * date changes). Each line is one write(2) on an O_APPEND descriptor, so any
 * number of processes can share a file. A registered secret (the API key) is
 * masked wherever it would appear. */
#ifndef AIMSG_LOG_H
#define AIMSG_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* dir may be NULL or "" for stderr only. Returns -1 (with a message on
 * stderr) when the directory cannot be created. */
int log_init(const char *program, const char *dir, const char *level);
#define LOG_MAX_SECRETS 8
/* A secret (the API keys, the token secret, a model URL's user:password) is
 * masked in every line logged; empty or NULL is ignored. */
void log_add_secret(const char *secret);
void log_clear_secrets(void);
void log_set_json(int on);
void log_close(void);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* A message that can come once per request while a condition lasts (Redis
 * down, Redis refusing writes) is logged at most once per interval: a busy
 * server must not write a line per request. The next line logged through
 * the same limit says how many were left out. One static limit per call site:
 *   static struct log_limit lim = LOG_LIMIT_INIT(10000);
 *   log_limited(&lim, LOG_WARN, "cannot connect: %s", why); */
struct log_limit {
    long long interval_ms;
    long long next_ms;          /* no line before this (monotonic clock) */
    unsigned long left_out;     /* lines left out since the last one logged */
};
#define LOG_LIMIT_INIT(ms) {.interval_ms = (ms), .next_ms = 0, .left_out = 0}

void log_limited(struct log_limit *lim, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
