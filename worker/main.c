/* worker -- answers queued jobs by streaming them from the model. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <signal.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "worker.h"

static struct worker *running;

static void on_signal(int sig)
{
    (void)sig;
    if (running)
        worker_stop(running);
}

int main(int argc, char **argv)
{
    struct config cfg;
    const struct config_usage usage = {"worker", "Streams answers to queued jobs from an OpenAI-compatible model."};
    int rc = config_load(&cfg, argc, argv, &usage);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (log_init("worker", cfg.log_dir, cfg.log_level) != 0) {
        config_free(&cfg);
        return 2;
    }
    log_set_secret(cfg.ai_api_key);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(running = worker_new(&cfg))) {
        log_error("cannot start");
        log_close();
        config_free(&cfg);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = worker_run(running);
    worker_free(running);
    running = NULL;
    curl_global_cleanup();
    log_info("stopped");
    log_close();
    config_free(&cfg);
    return rc;
}
