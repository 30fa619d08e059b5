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
    int json;
    char day[11];       /* date the open file is for */
} lg = {.program = "aimsg", .min = LOG_INFO, .fd = -1};

void log_set_json(int on)
{
    lg.json = on;
}

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

/* The id of "job <id>: ..." messages (see log.h), or 0. */
static size_t job_id_at(const char *msg, const char **id)
{
    if (strncmp(msg, "job ", 4) != 0)
        return 0;
    size_t n = strspn(msg + 4, "0123456789-");
    if (n == 0 || n > 41 || msg[4 + n] != ':')
        return 0;
    *id = msg + 4;
    return n;
}

/* msg as a JSON string's contents: quotes, backslashes and controls escaped. */
static size_t json_escape(char *out, size_t cap, const char *msg)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p && o + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    return o;
}

static const char *json_level[] = {"debug", "info", "warn", "error"};

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < lg.min)
        return;
    int saved_errno = errno;
    long long now = clock_wall_ms();
    time_t sec = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char stamp[80];
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(now % 1000));

    char msg[3584];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mask_secrets(msg);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' '; /* one event, one line */

    char line[8192];
    size_t len;
    if (lg.json) {
        char escaped[7200], job[80] = "";
        const char *id;
        size_t idlen = job_id_at(msg, &id);
        if (idlen)
            snprintf(job, sizeof(job), "\"job\":\"%.*s\",", (int)idlen, id);
        json_escape(escaped, sizeof(escaped), idlen ? msg + 4 + idlen + 1 + (msg[5 + idlen] == ' ')
                                                    : msg);
        len = (size_t)snprintf(line, sizeof(line) - 1,
                               "{\"time\":\"%s\",\"level\":\"%s\",\"program\":\"%s\",\"pid\":%ld,"
                               "%s\"message\":\"%s\"}",
                               stamp, json_level[level], lg.program, (long)getpid(), job, escaped);
    } else {
        len = (size_t)snprintf(line, sizeof(line) - 1, "%s %-5s %s[%ld] %s", stamp,
                               level_names[level], lg.program, (long)getpid(), msg);
    }
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';

    write_all(STDERR_FILENO, line, len);
    char day[11];
    memcpy(day, stamp, 10);
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
