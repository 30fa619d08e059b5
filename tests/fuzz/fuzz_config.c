/* fuzz_config.c -- libFuzzer harness: settings.yaml (common/config.c, via
 * libyaml). The input is written to a file and loaded like a config file. */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static FILE *null_stream;

static void remove_file(void)
{
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        /* /dev/shm: a file in memory, written once per input */
        snprintf(path, sizeof(path), "/dev/shm/fuzz_config.%ld.yaml", (long)getpid());
        atexit(remove_file);
        null_stream = fopen("/dev/null", "w");
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    if (fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    /* config.c explains every rejection on stderr: silence it (sanitizer
     * reports use fd 2 directly and are not affected) */
    FILE *saved = stderr;
    if (null_stream)
        stderr = null_stream;
    struct config cfg;
    int rc = config_load_file(&cfg, path);
    stderr = saved;
    if (rc == 0) {
        assert(cfg.redis_url && cfg.log_level && cfg.bind);
        assert(cfg.max_message_bytes >= 16 && cfg.port >= 1 && cfg.port <= 65535);
        config_free(&cfg);
    }
    return 0;
}
