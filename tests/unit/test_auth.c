/* test_auth.c -- every way common/auth.c accepts or refuses a token, the
 * Authorization header, the key file errors, and aimsg-token's tokens
 * verifying. Keys are made at test time (OpenSSL) in a temporary directory. */
#define _DEFAULT_SOURCE
#define TEST_NAME "auth"
#include "check.h"

#include <jansson.h>
#include <jwt.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "base64.h"
#include "buf.h"
#include "clock.h"
#include "config.h"

static char dir[64];
static long long now;

/* ---- files and keys ------------------------------------------------------ */

static const char *path_of(const char *name)
{
    static char paths[8][128];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
    return p;
}

static void write_text(const char *name, const char *text)
{
    FILE *f = fopen(path_of(name), "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(name);
        exit(1);
    }
}

/* The whole file, NUL-terminated (free it). */
static char *read_text(const char *name)
{
    FILE *f = fopen(path_of(name), "rb");
    char *text = calloc(1, 70000);
    size_t n = f && text ? fread(text, 1, 69999, f) : 0;
    if (f)
        fclose(f);
    if (!n) {
        fprintf(stderr, "cannot read %s\n", name);
        exit(1);
    }
    return text;
}

/* NAME.pem (private) and NAME.pub (public) of a new key. */
static void make_key(const char *name, const char *type, const char *param)
{
    EVP_PKEY *k = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, type, (size_t)atoi(param))
                  : param                   ? EVP_PKEY_Q_keygen(NULL, NULL, type, param)
                                            : EVP_PKEY_Q_keygen(NULL, NULL, type);
    char file[64];
    snprintf(file, sizeof(file), "%s.pem", name);
    FILE *priv = fopen(path_of(file), "w");
    snprintf(file, sizeof(file), "%s.pub", name);
    FILE *pub = fopen(path_of(file), "w");
    if (!k || !priv || !pub || PEM_write_PrivateKey(priv, k, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_PUBKEY(pub, k) != 1) {
        fprintf(stderr, "cannot make the %s key %s\n", type, name);
        exit(1);
    }
    fclose(priv);
    fclose(pub);
    EVP_PKEY_free(k);
}

/* ---- tokens -------------------------------------------------------------- */

static char *b64url(const void *data, size_t n)
{
    struct buf b = BUF_INIT;
    if (base64_encode(&b, data, n) != 0)
        exit(1);
    size_t j = 0;
    for (size_t i = 0; i < b.len; i++) {
        char c = b.data[i];
        if (c != '=')
            b.data[j++] = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    b.data[j] = '\0';
    return b.data;
}

static char *b64s(const char *text)
{
    return b64url(text, strlen(text));
}

static char *cat3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *s = malloc(n);
    snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

/* header.payload signed with HMAC-SHA256 under key (any header). */
static char *hs256_raw(const char *header, const char *payload, const void *key, size_t keylen)
{
    char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
    char *signing = cat3(h, ".", p);
    unsigned char mac[64];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)signing, strlen(signing), mac, &maclen);
    char *sig = b64url(mac, maclen);
    char *tok = cat3(signing, ".", sig);
    free(h);
    free(p);
    free(signing);
    free(sig);
    return tok;
}

static char *hs256(const char *payload, const char *secret)
{
    return hs256_raw("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, secret, strlen(secret));
}

/* A token from libjwt, signed with the private key in file NAME.pem. */
static char *pem_signed(jwt_alg_t alg, const char *name, const char *payload)
{
    char file[64];
    snprintf(file, sizeof(file), "%s.pem", name);
    char *pem = read_text(file);
    jwt_t *jwt = NULL;
    char *tok = NULL;
    if (jwt_new(&jwt) == 0 && jwt_set_alg(jwt, alg, (unsigned char *)pem, (int)strlen(pem)) == 0 &&
        jwt_add_grants_json(jwt, payload) == 0)
        tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    free(pem);
    if (!tok) {
        fprintf(stderr, "libjwt cannot sign with %s\n", name);
        exit(1);
    }
    return tok;
}

/* A payload from a printf format. */
static const char *claims(const char *fmt, ...)
{
    static char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return text;
}

/* A token of these claims under the secret most tests configure. */
#define TOK(...) hs256(claims(__VA_ARGS__), "k-k-k-k")

/* Verifies and frees tok. */
static const char *verify(const struct auth *a, char *tok, struct auth_identity *id)
{
    const char *msg = auth_verify(a, tok, strlen(tok), id);
    if (msg && strstr(msg, tok))
        msg = "the message shows the token";
    free(tok);
    return msg;
}

static const char *ok(const char *msg)
{
    return msg ? msg : "ok";
}

/* ---- configurations ------------------------------------------------------ */

static struct auth *make_auth(const char *secret, const char *public_key, const char *aud,
                              const char *iss, char *err, size_t errlen)
{
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.auth_jwt_secret = (char *)secret;
    cfg.auth_jwt_public_key = (char *)(public_key ? public_key : "");
    cfg.auth_jwt_audience = (char *)aud;
    cfg.auth_jwt_issuer = (char *)iss;
    cfg.auth_jwt_leeway = 30;
    return auth_new(&cfg, err, errlen);
}

static struct auth *must_auth(const char *secret, const char *public_key, const char *aud,
                              const char *iss)
{
    char err[512];
    struct auth *a = make_auth(secret, public_key, aud, iss, err, sizeof(err));
    if (!a) {
        fprintf(stderr, "auth_new: %s\n", err);
        exit(1);
    }
    return a;
}

/* ---- the tests ----------------------------------------------------------- */

/* A token verified once is remembered (auth_cache.h): the second use gives
 * the same identity, a changed byte is verified afresh, and expiry is still
 * checked on every use. */
static void test_verified_tokens(void)
{
    struct config cfg;
    char err[256];
    memset(&cfg, 0, sizeof(cfg));
    cfg.auth_jwt_secret = "s3cret-s3cret";
    cfg.auth_jwt_public_key = "";
    cfg.auth_jwt_leeway = 0;
    struct auth *a = auth_new(&cfg, err, sizeof(err));
    if (!a) {
        fprintf(stderr, "auth_new: %s\n", err);
        exit(1);
    }
    struct auth_identity id;
    long long exp = clock_wall_ms() / 1000 + 1;
    char *tok = hs256(claims("{\"sub\":\"carol\",\"exp\":%lld,\"admin\":true}", exp), "s3cret-s3cret");
    size_t n = strlen(tok);
    CHECK_STR("a token verified", "ok", ok(auth_verify(a, tok, n, &id)));
    CHECK_STR("... verified again", "ok", ok(auth_verify(a, tok, n, &id)));
    CHECK("... the same identity the second time",
          !strcmp(id.sub, "carol") && id.admin == 1 && id.exp == exp);
    char was = tok[n - 2];
    tok[n - 2] = was == 'A' ? 'B' : 'A';
    CHECK_STR("a byte of its signature changed: refused", AUTH_MSG_SIGNATURE,
              auth_verify(a, tok, n, &id));
    tok[n - 2] = was;
    CHECK_STR("... the original still good", "ok", ok(auth_verify(a, tok, n, &id)));
    CHECK_STR("... a shorter prefix of it is not taken for it", AUTH_MSG_SIGNATURE,
              auth_verify(a, tok, n - 1, &id));
    while (clock_wall_ms() / 1000 < exp)
        usleep(50 * 1000);
    CHECK_STR("once expired, the remembered token is refused", AUTH_MSG_EXPIRED,
              auth_verify(a, tok, n, &id));
    CHECK("... with no identity", id.sub[0] == '\0');
    free(tok);
    auth_free(a);
}

static void test_hs256(void)
{
    struct auth *a = must_auth("s3cret-s3cret", NULL, "", "");
    struct auth_identity id;
    CHECK("a secret turns authentication on", auth_enabled(a));
    CHECK_STR("valid HS256", "ok",
              ok(verify(a, hs256(claims("{\"sub\":\"alice\",\"exp\":%lld}", now + 60), "s3cret-s3cret"),
                        &id)));
    CHECK("... gives sub, exp, not admin",
          !strcmp(id.sub, "alice") && id.exp == now + 60 && id.admin == 0);
    CHECK_STR("no exp: accepted (exp is optional)", "ok",
              ok(verify(a, hs256("{\"sub\":\"bob\"}", "s3cret-s3cret"), &id)));
    CHECK("... exp 0", id.exp == 0 && !strcmp(id.sub, "bob"));
    CHECK_STR("bad signature (another secret)", AUTH_MSG_SIGNATURE,
              verify(a, hs256("{\"sub\":\"alice\"}", "other-secret"), &id));
    CHECK("... identity cleared", id.sub[0] == '\0' && id.admin == 0);

    /* tampered payload: another payload with the first one's signature */
    char *good = hs256("{\"sub\":\"alice\"}", "s3cret-s3cret");
    char *evil = b64s("{\"sub\":\"alice\",\"admin\":true}");
    char *dot1 = strchr(good, '.'), *dot2 = strchr(dot1 + 1, '.');
    *dot1 = '\0';
    char *head = cat3(good, ".", evil);
    char *tampered = cat3(head, "", dot2);
    CHECK_STR("tampered payload", AUTH_MSG_SIGNATURE, verify(a, tampered, &id));
    free(good);
    free(evil);
    free(head);

    CHECK_STR("HS512 refused", AUTH_MSG_ALG,
              verify(a, hs256_raw("{\"alg\":\"HS512\"}", "{\"sub\":\"a\"}", "s3cret-s3cret", 13), &id));
    CHECK_STR("alg names are case-sensitive (hs256 refused)", AUTH_MSG_ALG,
              verify(a, hs256_raw("{\"alg\":\"hs256\"}", "{\"sub\":\"a\"}", "s3cret-s3cret", 13), &id));
    CHECK_STR("RS256 token, only a secret configured", AUTH_MSG_ALG,
              verify(a, pem_signed(JWT_ALG_RS256, "rsa", "{\"sub\":\"a\"}"), &id));
    CHECK_STR("ES256 token, only a secret configured", AUTH_MSG_ALG,
              verify(a, pem_signed(JWT_ALG_ES256, "ec", "{\"sub\":\"a\"}"), &id));
    auth_free(a);
}

static void test_public_keys(void)
{
    struct auth_identity id;
    struct auth *rsa = must_auth("", path_of("rsa.pub"), "", "");
    CHECK("a public key turns authentication on", auth_enabled(rsa));
    CHECK_STR("valid RS256", "ok",
              ok(verify(rsa, pem_signed(JWT_ALG_RS256, "rsa", "{\"sub\":\"carol\",\"admin\":true}"),
                        &id)));
    CHECK("... gives sub and admin", !strcmp(id.sub, "carol") && id.admin == 1);
    CHECK_STR("RS256 by another key: bad signature", AUTH_MSG_SIGNATURE,
              verify(rsa, pem_signed(JWT_ALG_RS256, "rsa2", "{\"sub\":\"carol\"}"), &id));
    CHECK_STR("ES256 token, RSA key configured", AUTH_MSG_ALG,
              verify(rsa, pem_signed(JWT_ALG_ES256, "ec", "{\"sub\":\"a\"}"), &id));
    CHECK_STR("RS512 token, RSA key configured", AUTH_MSG_ALG,
              verify(rsa, pem_signed(JWT_ALG_RS512, "rsa", "{\"sub\":\"a\"}"), &id));

    /* alg confusion: HS256 with the PEM text as the HMAC secret */
    char *pem = read_text("rsa.pub");
    char *confused = hs256("{\"sub\":\"mallory\",\"admin\":true}", pem);
    jwt_t *jwt = NULL;
    CHECK("libjwt alone accepts the PEM-as-HMAC-secret token (why auth.c pins the alg)",
          jwt_decode(&jwt, confused, (unsigned char *)pem, (int)strlen(pem)) == 0);
    jwt_free(jwt);
    CHECK_STR("HS256 signed with the public key text, only the key configured: refused",
              AUTH_MSG_ALG, verify(rsa, confused, &id));
    CHECK("... no identity", id.sub[0] == '\0' && !id.admin);
    auth_free(rsa);

    struct auth *ec = must_auth("", path_of("ec.pub"), "", "");
    CHECK_STR("valid ES256", "ok",
              ok(verify(ec, pem_signed(JWT_ALG_ES256, "ec", "{\"sub\":\"dave\"}"), &id)));
    CHECK("... gives sub", !strcmp(id.sub, "dave"));
    CHECK_STR("RS256 token, EC key configured", AUTH_MSG_ALG,
              verify(ec, pem_signed(JWT_ALG_RS256, "rsa", "{\"sub\":\"a\"}"), &id));
    char *ecpem = read_text("ec.pub");
    CHECK_STR("HS256 signed with the EC public key text: refused", AUTH_MSG_ALG,
              verify(ec, hs256("{\"sub\":\"a\"}", ecpem), &id));
    free(ecpem);
    /* a signature that decodes to other than 64 bytes */
    char *t = pem_signed(JWT_ALG_ES256, "ec", "{\"sub\":\"a\"}");
    t[strlen(t) - 4] = '\0';
    CHECK_STR("ES256 with a cut signature", AUTH_MSG_SIGNATURE, verify(ec, t, &id));
    auth_free(ec);

    struct auth *both = must_auth("s3cret-s3cret", path_of("rsa.pub"), "", "");
    CHECK_STR("secret and RSA key: HS256 with the secret", "ok",
              ok(verify(both, hs256("{\"sub\":\"e\"}", "s3cret-s3cret"), &id)));
    CHECK_STR("secret and RSA key: RS256", "ok",
              ok(verify(both, pem_signed(JWT_ALG_RS256, "rsa", "{\"sub\":\"e\"}"), &id)));
    CHECK_STR("secret and RSA key: HS256 with the PEM text refused", AUTH_MSG_SIGNATURE,
              verify(both, hs256("{\"sub\":\"e\"}", pem), &id));
    CHECK_STR("secret and RSA key: ES256 refused", AUTH_MSG_ALG,
              verify(both, pem_signed(JWT_ALG_ES256, "ec", "{\"sub\":\"e\"}"), &id));
    auth_free(both);
    free(pem);
}

static void test_alg_none(void)
{
    struct auth *a = must_auth("s3cret-s3cret", NULL, "", "");
    struct auth_identity id;
    char *h = b64s("{\"alg\":\"none\",\"typ\":\"JWT\"}"), *p = b64s("{\"sub\":\"root\"}");
    char *hp = cat3(h, ".", p);
    CHECK_STR("alg none, empty signature", AUTH_MSG_MALFORMED, verify(a, cat3(hp, ".", ""), &id));
    CHECK_STR("alg none, with a signature", AUTH_MSG_ALG_NONE, verify(a, cat3(hp, ".", "AAAA"), &id));
    free(h);
    free(hp);
    h = b64s("{\"alg\":\"NoNe\"}");
    hp = cat3(h, ".", p);
    CHECK_STR("alg NoNe", AUTH_MSG_ALG_NONE, verify(a, cat3(hp, ".", "AAAA"), &id));
    free(h);
    free(hp);
    free(p);
    auth_free(a);
}

static void test_times(void)
{
    struct auth *a = must_auth("k-k-k-k", NULL, "", "");
    struct auth_identity id;
    CHECK_STR("expired beyond the leeway (30 s)", AUTH_MSG_EXPIRED,
              verify(a, TOK("{\"sub\":\"a\",\"exp\":%lld}", now - 100), &id));
    CHECK_STR("expired at exactly now - leeway", AUTH_MSG_EXPIRED,
              verify(a, TOK("{\"sub\":\"a\",\"exp\":%lld}", now - 30), &id));
    CHECK_STR("expired within the leeway: accepted", "ok",
              ok(verify(a, TOK("{\"sub\":\"a\",\"exp\":%lld}", now - 10), &id)));
    CHECK_STR("exp as a real number", "ok",
              ok(verify(a, TOK("{\"sub\":\"a\",\"exp\":%lld.5}", now + 100), &id)));
    CHECK_STR("exp near LLONG_MAX (no overflow)", "ok",
              ok(verify(a, TOK("{\"sub\":\"a\",\"exp\":%lld}", LLONG_MAX), &id)));
    CHECK_STR("exp far negative", AUTH_MSG_EXPIRED,
              verify(a, TOK("{\"sub\":\"a\",\"exp\":%lld}", LLONG_MIN), &id));
    CHECK_STR("exp a string", AUTH_MSG_TIME, verify(a, TOK("{\"sub\":\"a\",\"exp\":\"%lld\"}", now), &id));
    CHECK_STR("exp 1e300", AUTH_MSG_TIME, verify(a, TOK("{\"sub\":\"a\",\"exp\":1e300}"), &id));
    CHECK_STR("nbf beyond the leeway", AUTH_MSG_NOT_YET,
              verify(a, TOK("{\"sub\":\"a\",\"nbf\":%lld}", now + 100), &id));
    CHECK_STR("nbf within the leeway: accepted", "ok",
              ok(verify(a, TOK("{\"sub\":\"a\",\"nbf\":%lld}", now + 10), &id)));
    CHECK_STR("nbf near LLONG_MAX", AUTH_MSG_NOT_YET,
              verify(a, TOK("{\"sub\":\"a\",\"nbf\":%lld}", LLONG_MAX), &id));
    CHECK_STR("nbf null", AUTH_MSG_TIME, verify(a, TOK("{\"sub\":\"a\",\"nbf\":null}"), &id));
    CHECK_STR("iat in the future is not checked", "ok",
              ok(verify(a, TOK("{\"sub\":\"a\",\"iat\":%lld}", now + 100000), &id)));
    auth_free(a);
}

static void test_sub(void)
{
    struct auth *a = must_auth("k-k-k-k", NULL, "", "");
    struct auth_identity id;
    char long_sub[AUTH_MAX_SUB + 2];
    memset(long_sub, 'u', sizeof(long_sub));
    long_sub[AUTH_MAX_SUB + 1] = '\0';
    CHECK_STR("sub missing", AUTH_MSG_SUB, verify(a, TOK("{\"exp\":%lld}", now + 60), &id));
    CHECK_STR("sub empty", AUTH_MSG_SUB, verify(a, TOK("{\"sub\":\"\"}"), &id));
    CHECK_STR("sub a number", AUTH_MSG_SUB, verify(a, TOK("{\"sub\":42}"), &id));
    CHECK_STR("sub too long (129 bytes)", AUTH_MSG_SUB, verify(a, TOK("{\"sub\":\"%s\"}", long_sub), &id));
    long_sub[AUTH_MAX_SUB] = '\0';
    CHECK_STR("sub of 128 bytes", "ok", ok(verify(a, TOK("{\"sub\":\"%s\"}", long_sub), &id)));
    CHECK("... kept whole", strlen(id.sub) == AUTH_MAX_SUB);
    CHECK_STR("sub with a newline", AUTH_MSG_SUB, verify(a, TOK("{\"sub\":\"a\\nb\"}"), &id));
    CHECK_STR("sub with DEL", AUTH_MSG_SUB, verify(a, TOK("{\"sub\":\"a\\u007fb\"}"), &id));
    CHECK_STR("sub with a C1 control", AUTH_MSG_SUB, verify(a, TOK("{\"sub\":\"a\\u0085b\"}"), &id));
    CHECK_STR("sub with NUL", AUTH_MSG_PAYLOAD, verify(a, TOK("{\"sub\":\"a\\u0000b\"}"), &id));
    CHECK_STR("sub in Chinese", "ok", ok(verify(a, TOK("{\"sub\":\"张三\"}"), &id)));
    CHECK("... as UTF-8", !strcmp(id.sub, "张三"));
    CHECK("auth_valid_sub", auth_valid_sub("x", 1) && !auth_valid_sub("", 0) &&
                                !auth_valid_sub("a\tb", 3) && auth_valid_sub("\xc2\xa0", 2));
    auth_free(a);
}

static void test_aud_iss_admin(void)
{
    struct auth *a = must_auth("k-k-k-k", NULL, "aimsg", "https://idp.example");
    struct auth_identity id;
    const char *iss = "\"iss\":\"https://idp.example\"";
    CHECK_STR("aud and iss match", "ok", ok(verify(a, TOK("{\"sub\":\"a\",%s,\"aud\":\"aimsg\"}", iss), &id)));
    CHECK_STR("aud array naming it", "ok",
              ok(verify(a, TOK("{\"sub\":\"a\",%s,\"aud\":[\"x\",\"aimsg\"]}", iss), &id)));
    CHECK_STR("aud mismatch", AUTH_MSG_AUDIENCE, verify(a, TOK("{\"sub\":\"a\",%s,\"aud\":\"other\"}", iss), &id));
    CHECK_STR("aud array not naming it", AUTH_MSG_AUDIENCE,
              verify(a, TOK("{\"sub\":\"a\",%s,\"aud\":[\"x\",\"y\"]}", iss), &id));
    CHECK_STR("aud array with a non-string", AUTH_MSG_AUDIENCE,
              verify(a, TOK("{\"sub\":\"a\",%s,\"aud\":[1,\"aimsg\"]}", iss), &id));
    CHECK_STR("aud missing", AUTH_MSG_AUDIENCE, verify(a, TOK("{\"sub\":\"a\",%s}", iss), &id));
    CHECK_STR("aud a prefix of it", AUTH_MSG_AUDIENCE, verify(a, TOK("{\"sub\":\"a\",%s,\"aud\":\"aims\"}", iss), &id));
    CHECK_STR("iss mismatch", AUTH_MSG_ISSUER,
              verify(a, TOK("{\"sub\":\"a\",\"iss\":\"https://evil\",\"aud\":\"aimsg\"}"), &id));
    CHECK_STR("iss missing", AUTH_MSG_ISSUER, verify(a, TOK("{\"sub\":\"a\",\"aud\":\"aimsg\"}"), &id));
    CHECK_STR("iss not a string", AUTH_MSG_ISSUER, verify(a, TOK("{\"sub\":\"a\",\"iss\":1,\"aud\":\"aimsg\"}"), &id));
    auth_free(a);

    a = must_auth("k-k-k-k", NULL, "", "");
    CHECK_STR("aud and iss not configured: not checked", "ok",
              ok(verify(a, TOK("{\"sub\":\"a\",\"aud\":\"x\",\"iss\":\"y\"}"), &id)));
    verify(a, TOK("{\"sub\":\"a\",\"admin\":true}"), &id);
    CHECK("admin true: admin", id.admin == 1);
    verify(a, TOK("{\"sub\":\"a\",\"admin\":false}"), &id);
    CHECK("admin false: not admin", id.admin == 0 && id.sub[0]);
    verify(a, TOK("{\"sub\":\"a\",\"admin\":\"true\"}"), &id);
    CHECK("admin \"true\" (a string): not admin", id.admin == 0 && id.sub[0]);
    verify(a, TOK("{\"sub\":\"a\",\"admin\":1}"), &id);
    CHECK("admin 1: not admin", id.admin == 0 && id.sub[0]);
    CHECK_STR("an expired admin token", AUTH_MSG_EXPIRED,
              verify(a, TOK("{\"sub\":\"a\",\"admin\":true,\"exp\":%lld}", now - 1000), &id));
    CHECK("... is nobody", id.admin == 0 && !id.sub[0]);
    auth_free(a);
}

static void test_malformed(void)
{
    struct auth *a = must_auth("k-k-k-k", NULL, "", "");
    struct auth_identity id;
    char *good = TOK("{\"sub\":\"a\"}");
    CHECK_STR("the base token is fine", "ok", ok(auth_verify(a, good, strlen(good), &id)));
    CHECK_STR("length 0", AUTH_MSG_MISSING, auth_verify(a, good, 0, &id));
    CHECK_STR("NULL", AUTH_MSG_MISSING, auth_verify(a, NULL, 0, &id));
    CHECK_STR("only the length given is read", AUTH_MSG_MALFORMED,
              auth_verify(a, good, strlen(good) - strlen(strrchr(good, '.')), &id));
    CHECK_STR("two parts", AUTH_MSG_MALFORMED, verify(a, strdup("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0"), &id));
    CHECK_STR("four parts", AUTH_MSG_MALFORMED, verify(a, cat3(good, ".", "AAAA"), &id));
    CHECK_STR("an empty part", AUTH_MSG_MALFORMED, verify(a, strdup(".eyJzdWIiOiJhIn0.AAAA"), &id));
    CHECK_STR("standard base64 characters", AUTH_MSG_MALFORMED, verify(a, strdup("ab+c.ab/c.abcd"), &id));
    CHECK_STR("padding", AUTH_MSG_MALFORMED, verify(a, strdup("abc=.abcd.abcd"), &id));
    CHECK_STR("a part of 4k+1 characters", AUTH_MSG_MALFORMED, verify(a, strdup("abcde.abcd.abcd"), &id));
    CHECK_STR("a space", AUTH_MSG_MALFORMED, verify(a, cat3(" ", good, ""), &id));
    char nul[] = "abcd.ab\0d.abcd";
    CHECK_STR("a NUL inside", AUTH_MSG_MALFORMED, auth_verify(a, nul, sizeof(nul) - 1, &id));
    CHECK_STR("header not JSON", AUTH_MSG_HEADER, verify(a, strdup("abcd.abcd.abcd"), &id));
    CHECK_STR("header a JSON array", AUTH_MSG_HEADER,
              verify(a, hs256_raw("[\"HS256\"]", "{\"sub\":\"a\"}", "k-k-k-k", 7), &id));
    CHECK_STR("header without alg", AUTH_MSG_HEADER,
              verify(a, hs256_raw("{\"typ\":\"JWT\"}", "{\"sub\":\"a\"}", "k-k-k-k", 7), &id));
    CHECK_STR("header alg not a string", AUTH_MSG_HEADER,
              verify(a, hs256_raw("{\"alg\":256}", "{\"sub\":\"a\"}", "k-k-k-k", 7), &id));
    CHECK_STR("header typ not JWT", AUTH_MSG_HEADER,
              verify(a, hs256_raw("{\"alg\":\"HS256\",\"typ\":\"JOSE+JSON\"}", "{\"sub\":\"a\"}", "k-k-k-k", 7), &id));
    CHECK_STR("header typ jwt (case-insensitive)", "ok",
              ok(verify(a, hs256_raw("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", "{\"sub\":\"a\"}", "k-k-k-k", 7), &id)));
    CHECK_STR("header crit", AUTH_MSG_HEADER,
              verify(a, hs256_raw("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", "{\"sub\":\"a\"}", "k-k-k-k", 7), &id));
    CHECK_STR("header alg twice", AUTH_MSG_HEADER,
              verify(a, hs256_raw("{\"alg\":\"none\",\"alg\":\"HS256\"}", "{\"sub\":\"a\"}", "k-k-k-k", 7), &id));
    CHECK_STR("payload not JSON", AUTH_MSG_PAYLOAD,
              verify(a, hs256_raw("{\"alg\":\"HS256\"}", "sub=a", "k-k-k-k", 7), &id));
    CHECK_STR("payload a JSON string", AUTH_MSG_PAYLOAD,
              verify(a, hs256_raw("{\"alg\":\"HS256\"}", "\"a\"", "k-k-k-k", 7), &id));
    CHECK_STR("payload with sub twice", AUTH_MSG_PAYLOAD,
              verify(a, hs256_raw("{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"sub\":\"b\"}", "k-k-k-k", 7), &id));

    char *huge = malloc(AUTH_MAX_TOKEN + 2);
    memset(huge, 'A', AUTH_MAX_TOKEN + 1);
    huge[AUTH_MAX_TOKEN + 1] = '\0';
    huge[100] = huge[200] = '.';
    CHECK_STR("longer than AUTH_MAX_TOKEN", AUTH_MSG_TOO_LONG, auth_verify(a, huge, AUTH_MAX_TOKEN + 1, &id));
    CHECK("... at AUTH_MAX_TOKEN it is read", auth_verify(a, huge, AUTH_MAX_TOKEN, &id) != AUTH_MSG_TOO_LONG);
    free(huge);

    /* a valid token of a huge payload */
    char *big = malloc(AUTH_MAX_TOKEN);
    memset(big, 'x', AUTH_MAX_TOKEN - 1);
    big[AUTH_MAX_TOKEN - 1] = '\0';
    char *payload = cat3("{\"sub\":\"a\",\"pad\":\"", big, "\"}");
    CHECK_STR("a signed token over the bound", AUTH_MSG_TOO_LONG, verify(a, hs256(payload, "k-k-k-k"), &id));
    free(payload);
    free(big);
    free(good);
    auth_free(a);
}

static void test_disabled(void)
{
    char err[256];
    struct auth *a = make_auth("", "", "", "", err, sizeof(err));
    struct auth_identity id;
    CHECK("nothing configured: an object, authentication off", a && !auth_enabled(a));
    CHECK_STR("... and verify says so", AUTH_MSG_DISABLED, verify(a, TOK("{\"sub\":\"a\"}"), &id));
    auth_free(a);
    CHECK("auth_free(NULL)", (auth_free(NULL), 1));
}

static void test_bearer(void)
{
    size_t n = 0;
    const char *t = auth_bearer("Bearer abc.def.ghi", &n);
    CHECK("Bearer TOKEN", t && n == 11 && !strncmp(t, "abc.def.ghi", n));
    t = auth_bearer("bearer    abc", &n);
    CHECK("scheme case-insensitive, several spaces", t && n == 3 && !strncmp(t, "abc", 3));
    t = auth_bearer("BEARER abc  ", &n);
    CHECK("trailing spaces dropped", t && n == 3);
    CHECK("Bearer alone", !auth_bearer("Bearer", &n));
    CHECK("Bearer and spaces", !auth_bearer("Bearer   ", &n));
    CHECK("no space after the scheme", !auth_bearer("Bearerabc", &n));
    CHECK("a tab after the scheme", !auth_bearer("Bearer\tabc", &n));
    CHECK("another scheme", !auth_bearer("Basic YWxhZGRpbjpvcGVuc2VzYW1l", &n));
    CHECK("two words", !auth_bearer("Bearer abc def", &n));
    CHECK("empty", !auth_bearer("", &n));
    CHECK("NULL", !auth_bearer(NULL, &n));
    CHECK("AUTH_MSG_MISSING names the header", strstr(AUTH_MSG_MISSING, "Authorization: Bearer"));
}

static void test_key_errors(void)
{
    char err[512];
    struct auth *a = make_auth("", path_of("none.pub"), "", "", err, sizeof(err));
    CHECK("missing key file: NULL", !a);
    CHECK("... naming the option, the path and why",
          strstr(err, "auth_jwt_public_key '") && strstr(err, "/none.pub'") &&
              strstr(err, "No such file or directory"));
    write_text("garbage.pub", "this is not a key\n");
    a = make_auth("", path_of("garbage.pub"), "", "", err, sizeof(err));
    CHECK("garbage key file: NULL", !a && strstr(err, "garbage.pub") && strstr(err, "no PEM public key"));
    write_text("empty.pub", "");
    a = make_auth("", path_of("empty.pub"), "", "", err, sizeof(err));
    CHECK("empty key file: NULL", !a && strstr(err, "no PEM public key"));
    a = make_auth("", path_of("rsa.pem"), "", "", err, sizeof(err));
    CHECK("a private key file: NULL, saying so", !a && strstr(err, "holds a private key"));
    a = make_auth("", path_of("rsa1024.pub"), "", "", err, sizeof(err));
    CHECK("RSA 1024: NULL", !a && strstr(err, "1024 bits"));
    a = make_auth("", path_of("p384.pub"), "", "", err, sizeof(err));
    CHECK("EC P-384: NULL", !a && strstr(err, "not on P-256"));
    a = make_auth("", path_of("ed.pub"), "", "", err, sizeof(err));
    CHECK("Ed25519: NULL", !a && strstr(err, "ED25519"));
    a = make_auth("", dir, "", "", err, sizeof(err));
    CHECK("a directory: NULL", !a && strstr(err, "cannot read"));
    a = make_auth("s3cret", path_of("none.pub"), "", "", err, sizeof(err));
    CHECK("a secret does not excuse a bad key file", !a);
}

/* ---- aimsg-token ---------------------------------------------------------- */

/* Runs aimsg-token (next to this test binary) with args; its stdout in out.
 * Returns the exit status. */
static int run_token(const char *args, char *out, size_t outlen)
{
    char self[PATH_MAX], cmd[2048];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    snprintf(cmd, sizeof(cmd), "'%s/aimsg-token' --config '%s' %s 2>'%s'", dirname(self),
             path_of("token.yaml"), args, path_of("token.err"));
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t got = fread(out, 1, outlen - 1, p);
    out[got] = '\0';
    char rest[4096];
    while (fread(rest, 1, sizeof(rest), p) > 0)
        ;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *payload_of(const char *token)
{
    const char *p = strchr(token, '.');
    const char *end = p ? strchr(p + 1, '.') : NULL;
    struct buf raw = BUF_INIT;
    json_t *j = NULL;
    if (end && base64_decode(&raw, p + 1, (size_t)(end - p - 1)) == 0)
        j = json_loadb(raw.data, raw.len, 0, NULL);
    buf_free(&raw);
    return j;
}

static void test_token_command(void)
{
    static char out[65536];
    char self[PATH_MAX], err[512];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = '\0';
    char *bin = cat3(dirname(self), "/aimsg-token", "");
    int built = access(bin, X_OK) == 0;
    CHECK("aimsg-token is built next to the test", built);
    free(bin);
    if (!built)
        return;

    write_text("token.yaml", "auth_jwt_secret: \"tok-secret-tok-secret\"\n"
                             "auth_jwt_audience: aimsg\nauth_jwt_issuer: test-idp\n");
    struct config cfg;
    if (config_load_file(&cfg, path_of("token.yaml")) != 0)
        exit(1);
    struct auth *a = auth_new(&cfg, err, sizeof(err));
    config_free(&cfg);
    struct auth_identity id;

    int rc = run_token("--sub alice --admin --claim n=5 --claim note=hello --claim 'list=[1,2]'",
                       out, sizeof(out));
    size_t len = strcspn(out, "\n");
    CHECK("aimsg-token exits 0 and prints one line", rc == 0 && len > 0 && out[len] == '\n' && !out[len + 1]);
    CHECK_STR("its HS256 token verifies with auth_verify", "ok", ok(auth_verify(a, out, len, &id)));
    CHECK("... sub and admin", !strcmp(id.sub, "alice") && id.admin == 1);
    CHECK("... expires in an hour", id.exp >= now + 3590 && id.exp <= now + 3700);
    json_t *j = payload_of(out);
    CHECK("... aud and iss from the settings",
          j && !strcmp(json_string_value(json_object_get(j, "aud")), "aimsg") &&
              !strcmp(json_string_value(json_object_get(j, "iss")), "test-idp"));
    CHECK("... --claim values as JSON or string",
          j && json_integer_value(json_object_get(j, "n")) == 5 &&
              !strcmp(json_string_value(json_object_get(j, "note")), "hello") &&
              json_array_size(json_object_get(j, "list")) == 2);
    json_decref(j);

    rc = run_token("--sub bob --ttl 0", out, sizeof(out));
    len = strcspn(out, "\n");
    CHECK("--ttl 0: no exp, not admin",
          rc == 0 && !auth_verify(a, out, len, &id) && id.exp == 0 && id.admin == 0);
    rc = run_token("--sub bob --ttl -100", out, sizeof(out));
    CHECK_STR("--ttl -100: expired", AUTH_MSG_EXPIRED, auth_verify(a, out, strcspn(out, "\n"), &id));
    char *warning = read_text("token.err");
    CHECK("... with a warning", rc == 0 && strstr(warning, "would refuse") && strstr(warning, "expired"));
    free(warning);
    rc = run_token("--sub bob --claim aud=other", out, sizeof(out));
    CHECK_STR("--claim aud overrides the settings", AUTH_MSG_AUDIENCE,
              auth_verify(a, out, strcspn(out, "\n"), &id));
    auth_free(a);

    char args[512];
    snprintf(args, sizeof(args), "--sub erin --private-key '%s'", path_of("ec.pem"));
    rc = run_token(args, out, sizeof(out));
    a = must_auth("", path_of("ec.pub"), "aimsg", "test-idp");
    CHECK_STR("ES256 from --private-key verifies", "ok", ok(auth_verify(a, out, strcspn(out, "\n"), &id)));
    CHECK("... as erin", rc == 0 && !strcmp(id.sub, "erin"));
    auth_free(a);
    snprintf(args, sizeof(args), "--sub erin --alg RS256 --private-key '%s'", path_of("rsa.pem"));
    rc = run_token(args, out, sizeof(out));
    a = must_auth("", path_of("rsa.pub"), "aimsg", "test-idp");
    CHECK_STR("RS256 from --private-key verifies", "ok", ok(auth_verify(a, out, strcspn(out, "\n"), &id)));
    auth_free(a);

    struct {
        const char *args, *says;
    } bad[] = {
        {"", "--sub: required"},
        {"--sub", "--sub: missing value"},
        {"--sub ''", "--sub: expected"},
        {"--sub a --ttl soon", "--ttl: expected seconds"},
        {"--sub a --claim sub=b", "--claim sub: set by --sub"},
        {"--sub a --claim novalue", "expected KEY=VALUE"},
        {"--sub a --alg HS384", "not one of HS256, RS256, ES256"},
        {"--sub a --alg ES256", "--alg ES256: needs --private-key"},
        {"--sub a --private-key /nonexistent/key.pem", "cannot read: No such file"},
        {"--sub a --no-such-flag 1", "--no-such-flag: unknown option"},
        {"--sub a --auth-jwt-secret ''", "HS256 needs auth_jwt_secret"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rc = run_token(bad[i].args, out, sizeof(out));
        char *said = read_text("token.err");
        char name[256];
        snprintf(name, sizeof(name), "aimsg-token %s: exit 2, says '%s'", bad[i].args, bad[i].says);
        CHECK(name, rc == 2 && !out[0] && strstr(said, bad[i].says));
        if (rc != 2 || !strstr(said, bad[i].says))
            printf("  (exit %d, stderr: %s)\n", rc, said);
        free(said);
    }
    snprintf(args, sizeof(args), "--sub a --alg ES256 --private-key '%s'", path_of("rsa.pem"));
    rc = run_token(args, out, sizeof(out));
    char *said = read_text("token.err");
    CHECK("--alg ES256 with an RSA key: exit 2", rc == 2 && strstr(said, "is a key for RS256"));
    free(said);
    rc = run_token("--help", out, sizeof(out));
    CHECK("--help: exit 0, the token options and the settings",
          rc == 0 && strstr(out, "--private-key FILE") && strstr(out, "--auth-jwt-secret"));
}

static void remove_dir(void)
{
    const char *names[] = {"rsa.pem", "rsa.pub", "rsa2.pem", "rsa2.pub", "ec.pem", "ec.pub",
                           "rsa1024.pem", "rsa1024.pub", "p384.pem", "p384.pub", "ed.pem",
                           "ed.pub", "garbage.pub", "empty.pub", "token.yaml", "token.err"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unlink(path_of(names[i]));
    rmdir(dir);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/aimsg-auth-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    atexit(remove_dir);
    unsetenv("AUTH_JWT_SECRET");
    unsetenv("AUTH_JWT_PUBLIC_KEY");
    unsetenv("AUTH_JWT_AUDIENCE");
    unsetenv("AUTH_JWT_ISSUER");
    unsetenv("AUTH_JWT_LEEWAY");
    unsetenv("CONFIG");
    make_key("rsa", "RSA", "2048");
    make_key("rsa2", "RSA", "2048");
    make_key("ec", "EC", "P-256");
    make_key("rsa1024", "RSA", "1024");
    make_key("p384", "EC", "P-384");
    make_key("ed", "ED25519", NULL);
    now = clock_wall_ms() / 1000;

    test_hs256();
    test_public_keys();
    test_alg_none();
    test_times();
    test_verified_tokens();
    test_sub();
    test_aud_iss_admin();
    test_malformed();
    test_disabled();
    test_bearer();
    test_key_errors();
    test_token_command();
    return check_failed ? 1 : 0;
}
