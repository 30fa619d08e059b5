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

/* 1 when l is exactly the n items given. */
static int list_is(const struct config_list *l, size_t n, const char *const *items)
{
    if (l->n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(l->items[i], items[i]) != 0)
            return 0;
    return 1;
}

#define LIST_IS(l, ...)                                                               \
    list_is(&(l), sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *),       \
            (const char *[]){__VA_ARGS__})

/* ws_allowed_origins and trusted_proxies: YAML lists, comma strings, env,
 * flags, and their errors. */
static void test_lists(void)
{
    struct config c;
    char err[512];
    unsetenv("WS_ALLOWED_ORIGINS");
    unsetenv("TRUSTED_PROXIES");

    CHECK("list defaults", load(&c, "", 0, NULL, err, sizeof(err)) == 0 &&
                               c.ws_allowed_origins.n == 0 &&
                               LIST_IS(c.trusted_proxies, "127.0.0.1", "::1"));
    config_free(&c);
    CHECK("config_free empties the lists", c.trusted_proxies.n == 0 && !c.trusted_proxies.items);

    CHECK("flow sequence",
          load(&c, "ws_allowed_origins: [\"https://a.example\", \"*.example.com\"]\n", 0, NULL,
               err, sizeof(err)) == 0 &&
              LIST_IS(c.ws_allowed_origins, "https://a.example", "*.example.com"));
    config_free(&c);

    CHECK("block sequence, items trimmed, ~ and empty dropped",
          load(&c, "trusted_proxies:\n  - 10.0.0.0/8\n  - \" fd00::/8 \"\n  - ~\n  - ''\nport: 1\n",
               0, NULL, err, sizeof(err)) == 0 &&
              LIST_IS(c.trusted_proxies, "10.0.0.0/8", "fd00::/8") && c.port == 1);
    config_free(&c);

    CHECK("null in a sequence is the null origin",
          load(&c, "ws_allowed_origins: [null, \"https://a.com\"]\n", 0, NULL, err,
               sizeof(err)) == 0 &&
              LIST_IS(c.ws_allowed_origins, "null", "https://a.com"));
    config_free(&c);

    CHECK("scalar string is comma-separated",
          load(&c, "ws_allowed_origins: \" https://a.com ,, http://[::1]:8080,\"\n", 0, NULL, err,
               sizeof(err)) == 0 &&
              LIST_IS(c.ws_allowed_origins, "https://a.com", "http://[::1]:8080"));
    config_free(&c);

    CHECK("empty sequence is an empty list",
          load(&c, "trusted_proxies: []\n", 0, NULL, err, sizeof(err)) == 0 &&
              c.trusted_proxies.n == 0);
    config_free(&c);
    CHECK("empty string is an empty list",
          load(&c, "trusted_proxies: \"\"\n", 0, NULL, err, sizeof(err)) == 0 &&
              c.trusted_proxies.n == 0);
    config_free(&c);
    CHECK("no value is an empty list",
          load(&c, "trusted_proxies:\n", 0, NULL, err, sizeof(err)) == 0 &&
              c.trusted_proxies.n == 0);
    config_free(&c);

    CHECK("a later key in the file replaces the list",
          load(&c, "trusted_proxies: [10.0.0.1, 10.0.0.2]\ntrusted_proxies: [10.0.0.3]\n", 0, NULL,
               err, sizeof(err)) == 0 &&
              LIST_IS(c.trusted_proxies, "10.0.0.3"));
    config_free(&c);

    setenv("TRUSTED_PROXIES", " 10.0.0.0/8 , ::1 ", 1);
    CHECK("environment is comma-separated and replaces the file's list",
          load(&c, "trusted_proxies: [192.168.0.0/16, 172.16.0.0/12]\n", 0, NULL, err,
               sizeof(err)) == 0 &&
              LIST_IS(c.trusted_proxies, "10.0.0.0/8", "::1"));
    config_free(&c);

    char *flag[] = {"--trusted-proxies", "fd00::/8"};
    CHECK("a flag replaces the environment's list",
          load(&c, "", 2, flag, err, sizeof(err)) == 0 && LIST_IS(c.trusted_proxies, "fd00::/8"));
    config_free(&c);
    char *flag_empty[] = {"--trusted-proxies="};
    CHECK("an empty flag empties the list",
          load(&c, "", 1, flag_empty, err, sizeof(err)) == 0 && c.trusted_proxies.n == 0);
    config_free(&c);
    setenv("TRUSTED_PROXIES", "", 1);
    CHECK("an empty variable empties the list",
          load(&c, "", 0, NULL, err, sizeof(err)) == 0 && c.trusted_proxies.n == 0);
    config_free(&c);

    setenv("TRUSTED_PROXIES", "10.0.0.1,not-an-ip", 1);
    CHECK("bad item in the environment names the variable and the item",
          load(&c, "", 0, NULL, err, sizeof(err)) < 0 &&
              strstr(err, "environment TRUSTED_PROXIES: item 'not-an-ip'"));
    unsetenv("TRUSTED_PROXIES");

    char *bad_flag[] = {"--ws-allowed-origins=https://a.com,ftp://b.com"};
    CHECK("bad item in a flag names the flag and the item",
          load(&c, "", 1, bad_flag, err, sizeof(err)) < 0 &&
              strstr(err, "--ws-allowed-origins: item 'ftp://b.com'"));

    CHECK("bad item in a block sequence names its line",
          load(&c, "port: 1\ntrusted_proxies:\n  - 10.0.0.0/8\n  - 10.0.0.0/33\n", 0, NULL, err,
               sizeof(err)) < 0 &&
              strstr(err, ".yaml:4: key 'trusted_proxies': item '10.0.0.0/33'"));
    CHECK("host bits set after the prefix are refused",
          load(&c, "trusted_proxies: 10.1.0.0/8\n", 0, NULL, err, sizeof(err)) < 0 &&
              strstr(err, "item '10.1.0.0/8'"));
    CHECK("bad item in a comma string names the key",
          load(&c, "ws_allowed_origins: https://a.com, example.com\n", 0, NULL, err,
               sizeof(err)) < 0 &&
              strstr(err, ":1: key 'ws_allowed_origins': item 'example.com'"));
    CHECK("an origin with a path is refused",
          load(&c, "ws_allowed_origins: [\"https://a.com/\"]\n", 0, NULL, err, sizeof(err)) < 0 &&
              strstr(err, "item 'https://a.com/'"));
    CHECK("*.com is refused",
          load(&c, "ws_allowed_origins: [\"*.com\"]\n", 0, NULL, err, sizeof(err)) < 0 &&
              strstr(err, "item '*.com'"));
    CHECK("'*' must stand alone",
          load(&c, "ws_allowed_origins: [\"https://a.com\", \"*\"]\n", 0, NULL, err,
               sizeof(err)) < 0 &&
              strstr(err, "item '*'"));
    CHECK("'*' alone is accepted",
          load(&c, "ws_allowed_origins: \"*\"\n", 0, NULL, err, sizeof(err)) == 0 &&
              LIST_IS(c.ws_allowed_origins, "*"));
    config_free(&c);
    CHECK("an unquoted *.domain gets a hint",
          load(&c, "ws_allowed_origins: [*.a.com]\n", 0, NULL, err, sizeof(err)) < 0 &&
              strstr(err, "must be quoted"));
    CHECK("nested sequence is an error naming line and key",
          load(&c, "port: 1\nws_allowed_origins:\n  - https://a.com\n  - [https://b.com]\n", 0,
               NULL, err, sizeof(err)) < 0 &&
              strstr(err, ".yaml:4: key 'ws_allowed_origins'"));
    CHECK("mapping in a sequence is an error naming line and key",
          load(&c, "trusted_proxies:\n  - a: 1\n", 0, NULL, err, sizeof(err)) < 0 &&
              strstr(err, ".yaml:2: key 'trusted_proxies'") && strstr(err, "mapping"));
    CHECK("a sequence is still an error for other keys",
          load(&c, "ai_model: [a]\n", 0, NULL, err, sizeof(err)) < 0 &&
              strstr(err, "key 'ai_model': expected a plain value, got a list"));
    CHECK("a sequence at the top level is an error",
          load(&c, "- 1\n", 0, NULL, err, sizeof(err)) < 0 && strstr(err, "top level"));
}

static void test_url_userinfo(void)
{
    char out[256];
    const struct {
        const char *url, *redacted;
    } cases[] = {
        {"https://api.example.com/v1", "https://api.example.com/v1"},
        {"http://alice:pw@127.0.0.1:8000/v1", "http://***@127.0.0.1:8000/v1"},
        {"https://token@gw.example/v1", "https://***@gw.example/v1"},
        {"http://u:p@ss@host/v1", "http://***@host/v1"},          /* the last '@' ends it */
        {"http://host/v1/a@b", "http://host/v1/a@b"},             /* not in the authority */
        {"http://host/v1?to=a@b", "http://host/v1?to=a@b"},
        {"http://@host/v1", "http://@host/v1"},                   /* empty: nothing to hide */
        {"alice:pw@127.0.0.1:8000/v1", "***@127.0.0.1:8000/v1"},  /* curl guesses http:// */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK_STR("config_url_redacted", cases[i].redacted,
                  config_url_redacted(cases[i].url, out, sizeof(out)));
    size_t at, len;
    CHECK("config_url_userinfo says where the userinfo stands",
          config_url_userinfo("http://u:p@ss@host/", &at, &len) == 0 && at == 7 && len == 6);
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

    test_lists();
    test_url_userinfo();

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
