/* main.c -- aimsg-token: mints a JSON Web Token the service accepts and
 * prints it, for people, scripts and tests.
 *
 * It reads the service's own settings (settings.yaml, environment, flags):
 * the HS256 secret, and the aud / iss the service checks. Its own flags are
 * taken out of argv first; config_load gets the rest, so every setting flag
 * works here as it does on the daemons. When the settings turn
 * authentication on, the new token is checked with auth_verify as the
 * service would, and a refusal is warned about on stderr. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "clock.h"
#include "config.h"

#define MAX_CLAIMS 64
#define MAX_TTL (10LL * 366 * 86400)
#define KEY_FILE_MAX (64 * 1024)

static const struct config_usage usage = {
    "aimsg-token --sub NAME [TOKEN OPTION]...",
    "Mints a JSON Web Token the service accepts and prints it: HS256 with\n"
    "auth_jwt_secret, or RS256 / ES256 with --private-key. Its aud and iss are\n"
    "auth_jwt_audience and auth_jwt_issuer of the same settings.\n"
    "\n"
    "Token options:\n"
    "  --sub NAME                   the user (required; 1..128 bytes, no control characters)\n"
    "  --ttl SECONDS                lifetime (default 3600; 0: no exp; negative: already expired)\n"
    "  --admin                      \"admin\": true: may broadcast\n"
    "  --claim KEY=VALUE            another claim (repeatable); VALUE is JSON if it parses as\n"
    "                               JSON (5, true, [\"a\"], {...}), else a string; it overrides\n"
    "                               the aud / iss of the settings\n"
    "  --alg HS256|RS256|ES256      default: that of --private-key's type, else HS256\n"
    "  --private-key FILE           PEM private key: RSA (RS256) or EC P-256 (ES256)\n"
    "\n"
    "Settings (auth_jwt_secret, auth_jwt_audience, auth_jwt_issuer, ...):",
};

struct mint {
    const char *sub, *ttl, *alg, *private_key;
    int admin;
    const char *claims[MAX_CLAIMS];
    size_t nclaims;
};

/* ---- argv ---------------------------------------------------------------- */

/* 1 when argv[*i] is --NAME or --NAME=VALUE (*value: NULL when missing). */
static int take(const char *name, int argc, char **argv, int *i, const char **value)
{
    size_t n = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, n) != 0 || (arg[n] != '=' && arg[n] != '\0'))
        return 0;
    if (arg[n] == '=')
        *value = arg + n + 1;
    else
        *value = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

/* Takes the token options out of argv; the rest (rest[0] = argv[0]) is for
 * config_load. A setting flag's value is passed on as it is, even when it
 * looks like a token option. */
static int split_args(int argc, char **argv, struct mint *m, char **rest, int *nrest)
{
    static const char *const with_value[] = {"--sub", "--ttl", "--alg", "--private-key"};
    const char **slot[] = {&m->sub, &m->ttl, &m->alg, &m->private_key};
    *nrest = 0;
    rest[(*nrest)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = NULL;
        int taken = 0;
        for (size_t f = 0; f < 4 && !taken; f++) {
            if (!take(with_value[f], argc, argv, &i, &value))
                continue;
            if (!value) {
                fprintf(stderr, "%s: missing value\n", with_value[f]);
                return -1;
            }
            *slot[f] = value;
            taken = 1;
        }
        if (taken)
            continue;
        if (take("--claim", argc, argv, &i, &value)) {
            if (!value || m->nclaims == MAX_CLAIMS) {
                fprintf(stderr, "--claim: %s\n", value ? "too many (at most 64)" : "missing value");
                return -1;
            }
            m->claims[m->nclaims++] = value;
        } else if (strcmp(arg, "--admin") == 0) {
            m->admin = 1;
        } else {
            rest[(*nrest)++] = argv[i];
            int bare = strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 ||
                       strcmp(arg, "--print-config") == 0;
            if (!bare && strncmp(arg, "--", 2) == 0 && !strchr(arg, '=') && i + 1 < argc)
                rest[(*nrest)++] = argv[++i];
        }
    }
    rest[*nrest] = NULL;
    return 0;
}

/* ---- claims -------------------------------------------------------------- */

/* --claim KEY=VALUE into claims: VALUE as JSON if it is JSON, else a string. */
static int add_claim(json_t *claims, const char *arg)
{
    static const char *const reserved[][2] = {
        {"sub", "--sub"}, {"exp", "--ttl"}, {"iat", "--ttl"}, {AUTH_ADMIN_CLAIM, "--admin"}};
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        fprintf(stderr, "--claim '%s': expected KEY=VALUE\n", arg);
        return -1;
    }
    char key[256];
    if ((size_t)(eq - arg) >= sizeof(key)) {
        fprintf(stderr, "--claim: a key longer than %zu bytes\n", sizeof(key) - 1);
        return -1;
    }
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcmp(key, reserved[i][0]) == 0) {
            fprintf(stderr, "--claim %s: set by %s\n", key, reserved[i][1]);
            return -1;
        }
    }
    json_t *value = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!value)
        value = json_string(eq + 1);
    if (!value) {
        fprintf(stderr, "--claim %s: the value is not UTF-8\n", key);
        return -1;
    }
    if (json_object_get(claims, key) && strcmp(key, "aud") != 0 && strcmp(key, "iss") != 0) {
        fprintf(stderr, "--claim %s: given twice\n", key);
        json_decref(value);
        return -1;
    }
    if (json_object_set_new(claims, key, value) != 0) {
        fprintf(stderr, "--claim %s: the key is not UTF-8\n", key);
        return -1;
    }
    return 0;
}

static int parse_ttl(const char *text, long long *ttl)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < -MAX_TTL || v > MAX_TTL) {
        fprintf(stderr, "--ttl: expected seconds, -%lld..%lld, got '%s'\n", MAX_TTL, MAX_TTL,
                text);
        return -1;
    }
    *ttl = v;
    return 0;
}

/* sub, iat, exp, aud / iss from the settings, admin, then --claim. */
static json_t *build_claims(const struct mint *m, const struct config *cfg)
{
    if (!auth_valid_sub(m->sub, strlen(m->sub))) {
        fprintf(stderr, "--sub: expected 1..%d bytes without control characters\n", AUTH_MAX_SUB);
        return NULL;
    }
    long long ttl = 3600, now = clock_wall_ms() / 1000;
    if (m->ttl && parse_ttl(m->ttl, &ttl) != 0)
        return NULL;
    json_t *claims = json_object();
    json_t *sub = json_string(m->sub);      /* NULL when not UTF-8 */
    if (!claims || !sub) {
        fprintf(stderr, "--sub: %s\n", claims ? "not UTF-8" : "out of memory");
        json_decref(sub);
        json_decref(claims);
        return NULL;
    }
    int failed = json_object_set_new(claims, "sub", sub) != 0;
    failed |= json_object_set_new(claims, "iat", json_integer(now)) != 0;
    if (ttl != 0)
        failed |= json_object_set_new(claims, "exp", json_integer(now + ttl)) != 0;
    if (cfg->auth_jwt_audience[0])
        failed |= json_object_set_new(claims, "aud", json_string(cfg->auth_jwt_audience)) != 0;
    if (cfg->auth_jwt_issuer[0])
        failed |= json_object_set_new(claims, "iss", json_string(cfg->auth_jwt_issuer)) != 0;
    if (m->admin)
        failed |= json_object_set_new(claims, AUTH_ADMIN_CLAIM, json_true()) != 0;
    if (failed)
        fprintf(stderr, "out of memory\n");
    for (size_t i = 0; i < m->nclaims && !failed; i++)
        failed = add_claim(claims, m->claims[i]) != 0;
    if (failed) {
        json_decref(claims);
        return NULL;
    }
    return claims;
}

/* ---- the key ------------------------------------------------------------- */

struct signing_key {
    jwt_alg_t alg;
    unsigned char *key;         /* the secret, or the PEM text */
    size_t len;
};

static int read_key_file(const char *path, struct signing_key *k)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "--private-key '%s': cannot read: %s\n", path, strerror(errno));
        return -1;
    }
    k->key = malloc(KEY_FILE_MAX + 1);
    size_t n = k->key ? fread(k->key, 1, KEY_FILE_MAX + 1, f) : 0;
    int failed = !k->key || ferror(f);
    fclose(f);
    if (failed || n == 0 || n > KEY_FILE_MAX) {
        fprintf(stderr, "--private-key '%s': %s\n", path,
                failed ? "cannot read" : n ? "larger than 64 KiB: not a key" : "empty");
        return -1;
    }
    k->len = n;
    return 0;
}

/* The algorithm and key: --private-key's (its type decides, --alg must
 * agree), else auth_jwt_secret for HS256. */
static int choose_key(const struct mint *m, const struct config *cfg, struct signing_key *k)
{
    if (m->alg && strcmp(m->alg, "HS256") != 0 && strcmp(m->alg, "RS256") != 0 &&
        strcmp(m->alg, "ES256") != 0) {
        fprintf(stderr, "--alg: '%s' is not one of HS256, RS256, ES256\n", m->alg);
        return -1;
    }
    if (m->private_key) {
        if (read_key_file(m->private_key, k) != 0)
            return -1;
        char why[160];
        const char *alg = auth_pem_alg((const char *)k->key, k->len, 1, why, sizeof(why));
        if (!alg) {
            fprintf(stderr, "--private-key '%s': %s\n", m->private_key, why);
            return -1;
        }
        if (m->alg && strcmp(m->alg, alg) != 0) {
            fprintf(stderr, "--alg %s: --private-key '%s' is a key for %s\n", m->alg,
                    m->private_key, alg);
            return -1;
        }
        k->alg = jwt_str_alg(alg);
        return 0;
    }
    if (m->alg && strcmp(m->alg, "HS256") != 0) {
        fprintf(stderr, "--alg %s: needs --private-key FILE\n", m->alg);
        return -1;
    }
    if (!cfg->auth_jwt_secret[0]) {
        fprintf(stderr, "HS256 needs auth_jwt_secret (settings.yaml, AUTH_JWT_SECRET or "
                "--auth-jwt-secret); or sign with --private-key FILE\n");
        return -1;
    }
    k->alg = JWT_ALG_HS256;
    k->len = strlen(cfg->auth_jwt_secret);
    k->key = malloc(k->len);
    if (!k->key) {
        fprintf(stderr, "out of memory\n");
        return -1;
    }
    memcpy(k->key, cfg->auth_jwt_secret, k->len);
    return 0;
}

/* ---- minting ------------------------------------------------------------- */

/* The signed token (free() it), or NULL. */
static char *encode(const struct signing_key *k, json_t *claims)
{
    char *json = json_dumps(claims, JSON_COMPACT);
    jwt_t *jwt = NULL;
    char *token = NULL;
    int rc = json ? jwt_new(&jwt) : ENOMEM;
    if (rc == 0)
        rc = jwt_set_alg(jwt, k->alg, k->key, (int)k->len);
    if (rc == 0)
        rc = jwt_add_grants_json(jwt, json);
    if (rc == 0) {
        token = jwt_encode_str(jwt);
        rc = token ? 0 : errno ? errno : EINVAL;
    }
    if (rc != 0)
        fprintf(stderr, "cannot sign the token: %s\n", strerror(rc));
    jwt_free(jwt);
    free(json);
    return token;
}

/* What the service with these settings would say: a warning, not an error,
 * since the service may run with other settings than this command. */
static void check_as_service(const struct config *cfg, const char *token)
{
    if (!cfg->auth_jwt_secret[0] && !cfg->auth_jwt_public_key[0])
        return;
    char err[512];
    struct auth *a = auth_new(cfg, err, sizeof(err));
    if (!a) {
        fprintf(stderr, "warning: cannot check the token with these settings: %s\n", err);
        return;
    }
    struct auth_identity id;
    const char *why = auth_verify(a, token, strlen(token), &id);
    if (why)
        fprintf(stderr, "warning: the service with these settings would refuse this token: %s\n",
                why);
    auth_free(a);
}

static int mint(const struct mint *m, const struct config *cfg)
{
    if (!m->sub) {
        fprintf(stderr, "--sub: required: the user the token is for (see --help)\n");
        return -1;
    }
    struct signing_key k = {JWT_ALG_NONE, NULL, 0};
    json_t *claims = build_claims(m, cfg);
    char *token = NULL;
    if (claims && choose_key(m, cfg, &k) == 0)
        token = encode(&k, claims);
    json_decref(claims);
    if (k.key)
        memset(k.key, 0, k.len);
    free(k.key);
    if (!token)
        return -1;
    check_as_service(cfg, token);
    int rc = printf("%s\n", token) < 0 || fflush(stdout) != 0 ? -1 : 0;
    if (rc != 0)
        fprintf(stderr, "cannot write the token: %s\n", strerror(errno));
    free(token);
    return rc;
}

int main(int argc, char **argv)
{
    struct mint m;
    memset(&m, 0, sizeof(m));
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    int nrest = 0;
    if (!rest || split_args(argc, argv, &m, rest, &nrest) != 0) {
        free(rest);
        return 2;
    }
    struct config cfg;
    int rc = config_load(&cfg, nrest, rest, &usage);
    free(rest);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    rc = mint(&m, &cfg) == 0 ? 0 : 2;
    config_free(&cfg);
    return rc;
}
