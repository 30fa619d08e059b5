/* log.c -- see log.h. */
#define _POSIX_C_SOURCE 200809L
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

static struct {
    char program[32];
    char dir[512];
    enum log_level min;
    char *secrets[LOG_MAX_SECRETS];
    int fd;
    char day[11];       /* date the open file is for */
} lg = {.program = "aimsg", .min = LOG_INFO, .fd = -1};

static const char *level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static int mkdir_p(const char *path)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int log_init(const char *program, const char *dir, const char *level)
{
    snprintf(lg.program, sizeof(lg.program), "%s", program);
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++)
        if (level && strcasecmp(level, level_names[i]) == 0)
            lg.min = (enum log_level)i;
    lg.dir[0] = '\0';
    if (dir && dir[0]) {
        if (mkdir_p(dir) != 0) {
            fprintf(stderr, "%s: cannot create log directory '%s': %s\n", program, dir,
                    strerror(errno));
            return -1;
        }
        snprintf(lg.dir, sizeof(lg.dir), "%s", dir);
    }
    return 0;
}

void log_clear_secrets(void)
{
    for (int i = 0; i < LOG_MAX_SECRETS; i++) {
        free(lg.secrets[i]);
        lg.secrets[i] = NULL;
    }
}

void log_add_secret(const char *secret)
{
    for (int i = 0; i < LOG_MAX_SECRETS; i++) {
        if (!lg.secrets[i]) {
            lg.secrets[i] = secret && secret[0] ? strdup(secret) : NULL;
            return;
        }
    }
}

void log_close(void)
{
    if (lg.fd >= 0)
        close(lg.fd);
    lg.fd = -1;
    lg.day[0] = '\0';
    log_clear_secrets();
}

static void open_day_file(const char *day)
{
    if (!lg.dir[0] || strcmp(day, lg.day) == 0)
        return;
    char path[600];
    snprintf(path, sizeof(path), "%s/%s.log", lg.dir, day);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return; /* keep logging to stderr; the old file, if any, stays open */
    if (lg.fd >= 0)
        close(lg.fd);
    lg.fd = fd;
    memcpy(lg.day, day, sizeof(lg.day));
}

static void mask_secrets(char *s)
{
    for (int i = 0; i < LOG_MAX_SECRETS && lg.secrets[i]; i++) {
        const char *secret = lg.secrets[i];
        size_t n = strlen(secret);
        for (char *p = strstr(s, secret); p; p = strstr(p + n, secret))
            memset(p, '*', n);
    }
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        buf += w;
        len -= (size_t)w;
    }
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < lg.min)
        return;
    int saved_errno = errno;
    long long now = clock_wall_ms();
    time_t sec = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);

    char line[4096];
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s[%ld] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (long)(now % 1000), level_names[level], lg.program,
                     (long)getpid());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    mask_secrets(line);
    size_t len = strlen(line);
    for (size_t i = (size_t)n; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' '; /* one event, one line */
    line[len++] = '\n';

    write_all(STDERR_FILENO, line, len);
    char day[11];
    memcpy(day, line, 10);
    day[10] = '\0';
    open_day_file(day);
    if (lg.fd >= 0)
        write_all(lg.fd, line, len);
    errno = saved_errno;
}

void log_limited(struct log_limit *lim, enum log_level level, const char *fmt, ...)
{
    if (level < lg.min)
        return;
    long long now = clock_ms();
    if (lim->next_ms && now < lim->next_ms) {
        lim->left_out++;
        return;
    }
    char msg[3072];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (lim->left_out)
        log_msg(level, "%s (%lu more like it left out)", msg, lim->left_out);
    else
        log_msg(level, "%s", msg);
    lim->left_out = 0;
    lim->next_ms = now + lim->interval_ms;
}
