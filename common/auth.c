/* auth.c -- see auth.h. The signature is checked by libjwt 1.10.2 (Debian
 * libjwt-dev), but its jwt_decode() is not trusted with the choice of
 * algorithm. What this file relies on, read in libjwt/jwt.c and
 * libjwt/jwt-openssl.c of v1.10.2:
 *
 *  - jwt_decode(&jwt, token, key, key_len) verifies with the alg the
 *    token's own header names (jwt_str_alg(), case-insensitive): HS* as an
 *    HMAC with key as the secret, RS* / ES* with key read as a PEM public
 *    key. Handed the PEM text, it passes an HS256 token HMAC'd with that
 *    text as the secret. So the header is read here first, its alg compared
 *    (case-sensitively) with the one the configured keys allow, and
 *    jwt_decode() gets only the key of that alg. Afterwards jwt_get_alg()
 *    must still be that alg: both parsers read the same header bytes, this
 *    makes sure they agreed.
 *  - With key_len 0 it verifies nothing (the key is dropped, alg set to
 *    none, success). With a key, an "alg": "none" header is refused. Here
 *    a key is never empty: an empty auth_jwt_secret means no secret.
 *  - An empty part makes jwt_b64_decode() malloc(0) and write a byte into
 *    it; its decoder stops at or skips characters outside base64. So the
 *    token is checked here first: exactly three non-empty parts of base64url
 *    characters (no padding), none of a length no base64 text has.
 *  - HS256: the HMAC, base64url-encoded, is compared with the third part as
 *    a string (constant-time in Debian's 1.10.2-1+deb12u1, CVE-2024-25189).
 *    RS256 / ES256: the PEM is parsed on every call with
 *    PEM_read_bio_PUBKEY, its type must be RSA for RS*, EC for ES*
 *    (EVP_PKEY_id), an ES256 signature must be 64 bytes (r || s).
 *  - It rejects a string "typ" other than JWT and checks no claim at all:
 *    exp, nbf, sub, aud, iss and admin are checked here, on the payload as
 *    parsed here (jansson, duplicate keys refused). */
#define _GNU_SOURCE /* memmem */
#include "auth.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth_cache.h"
#include "base64.h"
#include "buf.h"
#include "clock.h"

const char AUTH_MSG_MISSING[] = "需要令牌 (a token is required: Authorization: Bearer <jwt>)";
const char AUTH_MSG_DISABLED[] = "未启用令牌认证 (token authentication is not enabled)";
const char AUTH_MSG_TOO_LONG[] = "令牌过长 (token too long)";
const char AUTH_MSG_MALFORMED[] =
    "令牌格式错误 (malformed token: expected three base64url parts separated by dots)";
const char AUTH_MSG_HEADER[] = "令牌头无效 (invalid token header)";
const char AUTH_MSG_ALG_NONE[] = "令牌算法不被接受 (token algorithm not accepted: none)";
const char AUTH_MSG_ALG[] =
    "令牌算法不被接受 (token algorithm not accepted: not the one of the configured key)";
const char AUTH_MSG_PAYLOAD[] = "令牌内容无效 (invalid token: payload is not a JSON object)";
const char AUTH_MSG_SIGNATURE[] = "令牌无效 (invalid token: bad signature)";
const char AUTH_MSG_TIME[] = "令牌时间无效 (invalid token: exp or nbf is not a number)";
const char AUTH_MSG_EXPIRED[] = "令牌已过期 (token expired)";
const char AUTH_MSG_NOT_YET[] = "令牌尚未生效 (token not yet valid)";
const char AUTH_MSG_SUB[] =
    "令牌用户无效 (invalid token: sub must be a non-empty string of at most 128 bytes "
    "without control characters)";
const char AUTH_MSG_AUDIENCE[] = "令牌受众不符 (token audience does not match)";
const char AUTH_MSG_ISSUER[] = "令牌签发者不符 (token issuer does not match)";
const char AUTH_MSG_INTERNAL[] = "令牌无法验证 (token could not be verified: out of memory)";

#define PEM_MAX_BYTES (64 * 1024)
#define RSA_MIN_BITS 2048           /* RFC 7518 3.3 */

struct auth {
    int enabled;
    char *secret;               /* HS256; NULL: none */
    size_t secret_len;
    char *pem;                  /* the public key file's text, as libjwt reads it; NULL: none */
    size_t pem_len;
    jwt_alg_t pem_alg;          /* JWT_ALG_RS256 or JWT_ALG_ES256 */
    char *audience;             /* NULL: aud not checked */
    char *issuer;               /* NULL: iss not checked */
    long long leeway;
    struct auth_cache *verified; /* NULL: none kept (no memory) */
};

/* ---- the public key ------------------------------------------------------ */

/* The whole file into *text (NUL-terminated); on error a reason in err. */
static int read_pem_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "auth_jwt_public_key '%s': cannot read: %s", path, strerror(errno));
        return -1;
    }
    char *data = malloc(PEM_MAX_BYTES + 1);
    if (!data) {
        fclose(f);
        snprintf(err, errlen, "auth_jwt_public_key '%s': out of memory", path);
        return -1;
    }
    size_t n = fread(data, 1, PEM_MAX_BYTES + 1, f);
    int failed = ferror(f);
    int saved = errno;
    fclose(f);
    if (failed || n > PEM_MAX_BYTES) {
        snprintf(err, errlen, "auth_jwt_public_key '%s': %s%s", path,
                 failed ? "cannot read: " : "larger than 64 KiB: not a public key",
                 failed ? strerror(saved) : "");
        free(data);
        return -1;
    }
    data[n] = '\0';
    *text = data;
    *len = n;
    return 0;
}

/* 1 when an EC key is on P-256, the curve of ES256. */
static int is_p256(const EVP_PKEY *pkey)
{
    char name[64];
    size_t n = 0;
    if (EVP_PKEY_get_group_name(pkey, name, sizeof(name), &n) != 1)
        return 0;
    int nid = OBJ_sn2nid(name);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(name);
    return nid == NID_X9_62_prime256v1;
}

/* No passphrase: an encrypted private key fails to load instead of asking
 * on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

const char *auth_pem_alg(const char *pem, size_t len, int is_private, char *why, size_t whylen)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    /* a public key is read the way libjwt reads it */
    EVP_PKEY *pkey = is_private ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                                : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ERR_clear_error();
    if (!pkey) {
        if (!is_private && memmem(pem, len, "PRIVATE KEY", 11))
            snprintf(why, whylen, "holds a private key; give the public key "
                     "(openssl pkey -in KEY -pubout)");
        else if (!is_private)
            snprintf(why, whylen, "no PEM public key in it (expected -----BEGIN PUBLIC KEY-----)");
        else if (memmem(pem, len, "ENCRYPTED", 9))
            snprintf(why, whylen, "an encrypted private key; decrypt it first "
                     "(openssl pkey -in KEY -out PLAIN.pem)");
        else
            snprintf(why, whylen, "no PEM private key in it (expected -----BEGIN PRIVATE KEY-----)");
        return NULL;
    }
    const char *alg = NULL;
    int id = EVP_PKEY_get_id(pkey);
    if (id == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits >= RSA_MIN_BITS)
            alg = "RS256";
        else
            snprintf(why, whylen, "an RSA key of %d bits; RS256 needs at least %d", bits,
                     RSA_MIN_BITS);
    } else if (id == EVP_PKEY_EC) {
        if (is_p256(pkey))
            alg = "ES256";
        else
            snprintf(why, whylen, "an EC key not on P-256; ES256 needs P-256 (prime256v1)");
    } else {
        const char *type = EVP_PKEY_get0_type_name(pkey);
        snprintf(why, whylen, "a key of type %s; only RSA (RS256) and EC P-256 (ES256) keys "
                 "can be used", type ? type : "unknown");
    }
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return alg;
}

static int load_public_key(struct auth *a, const char *path, char *err, size_t errlen)
{
    if (read_pem_file(path, &a->pem, &a->pem_len, err, errlen) != 0)
        return -1;
    char why[160];
    const char *alg = auth_pem_alg(a->pem, a->pem_len, 0, why, sizeof(why));
    if (!alg) {
        snprintf(err, errlen, "auth_jwt_public_key '%s': %s", path, why);
        return -1;
    }
    a->pem_alg = jwt_str_alg(alg);
    return 0;
}

/* ---- setup --------------------------------------------------------------- */

/* A copy of a setting, NULL when it is empty. */
static int copy_setting(char **out, const char *value)
{
    *out = NULL;
    if (!value || !value[0])
        return 0;
    *out = strdup(value);
    return *out ? 0 : -1;
}

struct auth *auth_new(const struct config *cfg, char *err, size_t errlen)
{
    struct auth *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->leeway = cfg->auth_jwt_leeway;
    if (copy_setting(&a->secret, cfg->auth_jwt_secret) != 0 ||
        copy_setting(&a->audience, cfg->auth_jwt_audience) != 0 ||
        copy_setting(&a->issuer, cfg->auth_jwt_issuer) != 0) {
        snprintf(err, errlen, "out of memory");
        auth_free(a);
        return NULL;
    }
    a->secret_len = a->secret ? strlen(a->secret) : 0;
    const char *path = cfg->auth_jwt_public_key;
    if (path && path[0] && load_public_key(a, path, err, errlen) != 0) {
        auth_free(a);
        return NULL;
    }
    a->enabled = a->secret || a->pem;
    a->verified = auth_cache_new(); /* (without it every token is verified in full) */
    return a;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    if (a->secret)
        memset(a->secret, 0, a->secret_len);
    free(a->secret);
    free(a->pem);
    free(a->audience);
    free(a->issuer);
    auth_cache_free(a->verified);
    free(a);
}

int auth_enabled(const struct auth *a)
{
    return a && a->enabled;
}

/* ---- the token's form ---------------------------------------------------- */

struct part {
    const char *p;
    size_t len;
};

static int is_base64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* Exactly three non-empty base64url parts (no padding), each of a length
 * some bytes encode to (4k + 1 characters encode nothing). */
static int split_token(const char *token, size_t len, struct part parts[3])
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && token[i] != '.') {
            if (!is_base64url(token[i]))
                return -1;
            continue;
        }
        size_t plen = i - start;
        if (n == 3 || plen == 0 || plen % 4 == 1)
            return -1;
        parts[n].p = token + start;
        parts[n].len = plen;
        n++;
        start = i + 1;
    }
    return n == 3 ? 0 : -1;
}

/* A part decoded and parsed: a JSON object, or NULL. */
static json_t *part_object(const struct part *part)
{
    struct buf raw = BUF_INIT;
    json_t *obj = NULL;
    if (base64_decode(&raw, part->p, part->len) == 0) {
        obj = json_loadb(raw.data, raw.len, JSON_REJECT_DUPLICATES, NULL);
        if (obj && !json_is_object(obj)) {
            json_decref(obj);
            obj = NULL;
        }
    }
    buf_free(&raw);
    return obj;
}

/* ---- the header: which key ----------------------------------------------- */

struct key_choice {
    jwt_alg_t alg;
    const unsigned char *key;
    int len;
};

/* The key the header's alg asks for, if the configuration allows that alg;
 * else the reason. */
static const char *choose_key(const struct auth *a, json_t *header, struct key_choice *k)
{
    json_t *typ = json_object_get(header, "typ");
    if (typ && !(json_is_string(typ) && strcasecmp(json_string_value(typ), "JWT") == 0))
        return AUTH_MSG_HEADER;
    if (json_object_get(header, "crit"))
        return AUTH_MSG_HEADER;     /* extensions that must be understood: none are */
    const char *alg = json_string_value(json_object_get(header, "alg"));
    if (!alg)
        return AUTH_MSG_HEADER;
    if (strcasecmp(alg, "none") == 0)
        return AUTH_MSG_ALG_NONE;
    if (a->secret && strcmp(alg, "HS256") == 0) {
        k->alg = JWT_ALG_HS256;
        k->key = (const unsigned char *)a->secret;
        k->len = (int)a->secret_len;
        return NULL;
    }
    if (a->pem && strcmp(alg, jwt_alg_str(a->pem_alg)) == 0) {
        k->alg = a->pem_alg;
        k->key = (const unsigned char *)a->pem;
        k->len = (int)a->pem_len;
        return NULL;
    }
    return AUTH_MSG_ALG;
}

/* libjwt's verdict on the signature, with exactly the chosen key. */
static const char *check_signature(const char *token, size_t len, const struct key_choice *k)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return AUTH_MSG_INTERNAL;
    memcpy(copy, token, len);
    copy[len] = '\0';
    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, copy, k->key, k->len);
    free(copy);
    ERR_clear_error();
    if (rc == ENOMEM)
        return AUTH_MSG_INTERNAL;
    const char *msg = NULL;
    if (rc != 0 || !jwt)
        msg = AUTH_MSG_SIGNATURE;
    else if (jwt_get_alg(jwt) != k->alg)
        msg = AUTH_MSG_ALG;
    jwt_free(jwt);
    return msg;
}

/* ---- the claims ---------------------------------------------------------- */

/* A NumericDate claim: 0 absent, 1 *out set, -1 not a number. Fractions of
 * a second are dropped. */
static int numeric_date(json_t *claims, const char *name, long long *out)
{
    json_t *v = json_object_get(claims, name);
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d > -1e18 && d < 1e18))
            return -1;
        *out = (long long)d;
        return 1;
    }
    return -1;
}

/* Times compare without adding to the token's values (which may be near
 * LLONG_MAX): now and leeway are small. */
static const char *check_times(const struct auth *a, json_t *claims, struct auth_identity *id)
{
    long long now = clock_wall_ms() / 1000, exp = 0, nbf = 0;
    int has_exp = numeric_date(claims, "exp", &exp);
    int has_nbf = numeric_date(claims, "nbf", &nbf);
    if (has_exp < 0 || has_nbf < 0)
        return AUTH_MSG_TIME;
    if (has_exp && now - a->leeway >= exp)
        return AUTH_MSG_EXPIRED;
    if (has_nbf && now + a->leeway < nbf)
        return AUTH_MSG_NOT_YET;
    id->exp = has_exp ? exp : 0;
    return NULL;
}

/* jansson has already checked the string is UTF-8 without NUL; C1
 * controls (U+0080..U+009F) are C2 80..C2 9F in it. */
int auth_valid_sub(const char *s, size_t n)
{
    if (n == 0 || n > AUTH_MAX_SUB)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9f)
            return 0;
    }
    return 1;
}

static const char *check_sub(json_t *claims, struct auth_identity *id)
{
    json_t *sub = json_object_get(claims, "sub");
    if (!json_is_string(sub))
        return AUTH_MSG_SUB;
    const char *s = json_string_value(sub);
    size_t n = json_string_length(sub);
    if (!auth_valid_sub(s, n))
        return AUTH_MSG_SUB;
    memcpy(id->sub, s, n);
    id->sub[n] = '\0';
    return NULL;
}

/* aud is a string or an array of strings (RFC 7519 4.1.3) naming want. */
static int audience_names(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (!json_is_array(aud))
        return 0;
    size_t i;
    json_t *v;
    int found = 0;
    json_array_foreach(aud, i, v) {
        if (!json_is_string(v))
            return 0;
        if (strcmp(json_string_value(v), want) == 0)
            found = 1;
    }
    return found;
}

static const char *check_claims(const struct auth *a, json_t *claims, struct auth_identity *id)
{
    const char *msg = check_times(a, claims, id);
    if (!msg)
        msg = check_sub(claims, id);
    if (msg)
        return msg;
    if (a->issuer) {
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        if (!iss || strcmp(iss, a->issuer) != 0)
            return AUTH_MSG_ISSUER;
    }
    if (a->audience && !audience_names(json_object_get(claims, "aud"), a->audience))
        return AUTH_MSG_AUDIENCE;
    id->admin = json_is_true(json_object_get(claims, AUTH_ADMIN_CLAIM));
    return NULL;
}

/* ---- verify -------------------------------------------------------------- */

const char *auth_verify(const struct auth *a, const char *token, size_t len,
                        struct auth_identity *id)
{
    memset(id, 0, sizeof(*id));
    if (!auth_enabled(a))
        return AUTH_MSG_DISABLED;
    if (!token || len == 0)
        return AUTH_MSG_MISSING;
    if (len > AUTH_MAX_TOKEN)
        return AUTH_MSG_TOO_LONG;
    const struct auth_identity *known = auth_cache_find(a->verified, token, len);
    if (known) {
        if (known->exp && clock_wall_ms() / 1000 - a->leeway >= known->exp)
            return AUTH_MSG_EXPIRED;
        *id = *known;
        return NULL;
    }
    struct part parts[3];
    if (split_token(token, len, parts) != 0)
        return AUTH_MSG_MALFORMED;

    json_t *header = part_object(&parts[0]);
    if (!header)
        return AUTH_MSG_HEADER;
    struct key_choice k;
    const char *msg = choose_key(a, header, &k);
    json_decref(header);
    if (msg)
        return msg;

    json_t *claims = part_object(&parts[1]);
    if (!claims)
        return AUTH_MSG_PAYLOAD;
    msg = check_signature(token, len, &k);
    if (!msg)
        msg = check_claims(a, claims, id);
    json_decref(claims);
    if (msg)
        memset(id, 0, sizeof(*id));
    else
        auth_cache_put(a->verified, token, len, id);
    return msg;
}

/* ---- the header that carries it ------------------------------------------ */

const char *auth_bearer(const char *authorization, size_t *len)
{
    if (!authorization || strncasecmp(authorization, "Bearer", 6) != 0)
        return NULL;
    const char *p = authorization + 6;
    if (*p != ' ')
        return NULL;
    while (*p == ' ')
        p++;
    size_t n = 0;
    while (p[n] && p[n] != ' ' && p[n] != '\t')
        n++;
    /* nothing, or something after the token but trailing blanks */
    const char *rest = p + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (n == 0 || *rest)
        return NULL;
    *len = n;
    return p;
}
