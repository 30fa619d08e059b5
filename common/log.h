/* log.h -- one line per event: time, level, program[pid], message.
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
void log_set_secret(const char *secret);
void log_close(void);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
