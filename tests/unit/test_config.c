/* test_config.c -- settings.yaml < environment < flags, and the errors. */
#define _POSIX_C_SOURCE 200809L
#define TEST_NAME "config"
#include "check.h"
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

static const char *write_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/aimsg-config-%ld.yaml", (long)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads with the given file and argv; captures stderr into err. */
static int load(struct config *cfg, const char *yaml, int argc, char **argv, char *err,
                size_t errlen)
{
    const char *path = write_file(yaml);
    char *args[16] = {"prog", "--config", (char *)path};
    for (int i = 0; i < argc && i < 12; i++)
        args[3 + i] = argv[i];
    fflush(stderr);
    FILE *tmp = tmpfile();
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    const struct config_usage u = {"prog", "test"};
    int rc = config_load(cfg, 3 + argc, args, &u);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(err, 1, errlen - 1, tmp);
    err[n] = '\0';
    fclose(tmp);
    unlink(path);
    return rc;
}

int main(void)
{
    struct config c;
    char err[512];
    unsetenv("PORT");
    unsetenv("AI_API_KEY");
    unsetenv("AI_BASE_URL");

    CHECK("empty file gives defaults", load(&c, "", 0, NULL, err, sizeof(err)) == 0 &&
                                           c.port == 8080 && !strcmp(c.redis_prefix, "aimsg:"));
    config_free(&c);

    CHECK("file sets values", load(&c, "port: 9000\nai_model: \"m-1\"\nai_api_key: ''\n", 0,
                                   NULL, err, sizeof(err)) == 0 &&
                                  c.port == 9000 && !strcmp(c.ai_model, "m-1"));
    config_free(&c);

    setenv("PORT", "9100", 1);
    setenv("AI_BASE_URL", "http://env/v1", 1);
    CHECK("environment beats the file",
          load(&c, "port: 9000\nai_base_url: http://file/v1\n", 0, NULL, err, sizeof(err)) == 0 &&
              c.port == 9100 && !strcmp(c.ai_base_url, "http://env/v1"));
    config_free(&c);

    char *flags[] = {"--port", "9200", "--ai-base-url=http://flag/v1"};
    CHECK("flags beat the environment",
          load(&c, "port: 9000\n", 3, flags, err, sizeof(err)) == 0 && c.port == 9200 &&
              !strcmp(c.ai_base_url, "http://flag/v1"));
    config_free(&c);
    unsetenv("PORT");
    unsetenv("AI_BASE_URL");

    CHECK("unknown key is an error", load(&c, "port: 1\nbogus: 2\n", 0, NULL, err, sizeof(err)) < 0);
    CHECK("error names file, line and key", strstr(err, ".yaml:2: unknown key 'bogus'") != NULL);

    CHECK("wrong type is an error", load(&c, "port: eighty\n", 0, NULL, err, sizeof(err)) < 0);
    CHECK("type error names the key and value",
          strstr(err, ":1: key 'port': expected an integer, got 'eighty'") != NULL);

    CHECK("out of range is an error", load(&c, "port: 70000\n", 0, NULL, err, sizeof(err)) < 0 &&
                                          strstr(err, "out of range"));
    CHECK("a list is not a value", load(&c, "port: [1, 2]\n", 0, NULL, err, sizeof(err)) < 0 &&
                                       strstr(err, "key 'port'"));
    CHECK("a mapping is not a value",
          load(&c, "ai_model:\n  a: b\n", 0, NULL, err, sizeof(err)) < 0 && strstr(err, "key 'ai_model'"));
    CHECK("invalid YAML is an error", load(&c, "ai_model: \"open\n", 0, NULL, err, sizeof(err)) < 0 &&
                                          strstr(err, "invalid YAML"));
    CHECK("bad log level", load(&c, "log_level: loud\n", 0, NULL, err, sizeof(err)) < 0 &&
                               strstr(err, "log_level"));

    char *unknown_flag[] = {"--no-such-thing", "1"};
    CHECK("unknown flag is an error", load(&c, "", 2, unknown_flag, err, sizeof(err)) < 0 &&
                                          strstr(err, "--no-such-thing: unknown option"));
    char *missing[] = {"--port"};
    CHECK("flag without value is an error", load(&c, "", 1, missing, err, sizeof(err)) < 0 &&
                                                strstr(err, "--port: missing value"));
    setenv("PORT", "x", 1);
    CHECK("bad environment names the variable", load(&c, "", 0, NULL, err, sizeof(err)) < 0 &&
                                                    strstr(err, "environment PORT"));
    unsetenv("PORT");

    const struct config_usage u = {"prog", "test"};
    char *noexist[] = {"prog", "--config", "/nonexistent/settings.yaml"};
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    dup2(fileno(tmp), 2);
    int rc = config_load(&c, 3, noexist, &u);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(err, 1, sizeof(err) - 1, tmp);
    err[n] = '\0';
    fclose(tmp);
    CHECK("unreadable file is an error naming it",
          rc < 0 && strstr(err, "/nonexistent/settings.yaml: cannot read"));
    char url[128];
    config_load_file(&c, write_file("ai_base_url: http://m/v1\n"));
    CHECK_STR("base URL as configured", "http://m/v1", config_ai_base_url(&c, url, sizeof(url)));
    CHECK_STR("the URL is written into the buffer", "http://m/v1", url);
    config_free(&c);
    config_load_file(&c, write_file("ai_api_key: k\n"));
    CHECK_STR("a key alone means OpenAI", "https://api.openai.com/v1",
              config_ai_base_url(&c, url, sizeof(url)));
    config_free(&c);
    config_load_file(&c, write_file("standin_port: 9999\n"));
    CHECK_STR("neither means the stand-in", "http://127.0.0.1:9999/v1",
              config_ai_base_url(&c, url, sizeof(url)));
    config_free(&c);
    return check_failed ? 1 : 0;
}
