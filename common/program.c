/* program.c -- see program.h. */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L
#include "program.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* The user:password of a model endpoint's URL is as secret as its API key. */
static void add_userinfo_secret(const char *url)
{
    size_t at, len;
    char secret[512];
    /* (one so short would blank that text in every line; it guards nothing) */
    if (config_url_userinfo(url, &at, &len) == 0 && len >= 4 && len < sizeof(secret)) {
        memcpy(secret, url + at, len);
        secret[len] = '\0';
        log_add_secret(secret);
    }
}

int program_start(struct config *cfg, int argc, char **argv, const struct config_usage *usage,
                  int *exit_code)
{
    int rc = config_load(cfg, argc, argv, usage);
    if (rc != 0) {
        *exit_code = rc > 0 ? 0 : 2;
        return 1;
    }
    if (log_init(usage->program, cfg->log_dir, cfg->log_level) != 0) {
        config_free(cfg);
        *exit_code = 2;
        return 1;
    }
    log_set_json(strcmp(cfg->log_format, "json") == 0);
    log_add_secret(cfg->ai_api_key);
    log_add_secret(cfg->ai_fallback_api_key);
    log_add_secret(cfg->auth_jwt_secret);
    add_userinfo_secret(cfg->ai_base_url);
    add_userinfo_secret(cfg->ai_fallback_base_url);
    return 0;
}

void program_end(struct config *cfg)
{
    log_close();
    config_free(cfg);
}

int program_on_stop_signals(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

void program_instance_name(const char *configured, char *buf, size_t len)
{
    if (configured && configured[0]) {
        snprintf(buf, len, "%s", configured);
        return;
    }
    char host[64];
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, len, "%s-%ld", host, (long)getpid());
}
