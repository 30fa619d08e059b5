/* worker -- answers queued jobs by streaming them from the model. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <signal.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "program.h"
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
    int rc;
    if (program_start(&cfg, argc, argv, &usage, &rc))
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(running = worker_new(&cfg)) ||
        program_on_stop_signals(on_signal) != 0) {
        log_error("cannot start");
        worker_free(running);
        program_end(&cfg);
        return 1;
    }

    rc = worker_run(running);
    worker_free(running);
    running = NULL;
    curl_global_cleanup();
    log_info("stopped");
    program_end(&cfg);
    return rc;
}
