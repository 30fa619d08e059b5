/* fuzz_auth.c -- libFuzzer harness: a token given to auth_verify (common/auth.c,
 * libjwt underneath) with an HS256 secret and an ES256 public key both
 * configured, aud and iss checked; and the same bytes as an Authorization
 * header to auth_bearer.
 *
 * An input starting with byte 0x01 is "HEADER-JSON\nPAYLOAD-JSON": the harness
 * encodes both and signs them with the HS256 secret, so that the claim checks
 * behind the signature are fuzzed too. Any other input is the token itself.
 * Checks that a refusal leaves no identity and an accepted sub obeys the rules. */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "base64.h"
#include "buf.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-secret-fuzz-secret"

/* tests/fuzz/corpus/auth/es256 is signed by its private key */
static const char public_key[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEV8qq9ITaJVKDGpTWhbGsBTobXkhF\n"
    "EamS9kK9ssBiZUy1mSTlrb0wYwYX7W8l9nkkTC8SZ+53oUitGabnFqvfvA==\n"
    "-----END PUBLIC KEY-----\n";

static struct auth *auth;
static char path[64];

static void cleanup(void)
{
    auth_free(auth);
    unlink(path);
}

static void setup(void)
{
    snprintf(path, sizeof(path), "/dev/shm/fuzz_auth.%ld.pub", (long)getpid());
    FILE *f = fopen(path, "w");
    if (!f || fputs(public_key, f) < 0 || fclose(f) != 0)
        abort();
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.auth_jwt_secret = SECRET;
    cfg.auth_jwt_public_key = path;
    cfg.auth_jwt_audience = "aimsg";
    cfg.auth_jwt_issuer = "idp";
    cfg.auth_jwt_leeway = 30;
    char err[256];
    auth = auth_new(&cfg, err, sizeof(err));
    if (!auth) {
        fprintf(stderr, "fuzz_auth: %s\n", err);
        abort();
    }
    atexit(cleanup);
}

static void append_b64url(struct buf *out, const char *p, size_t n)
{
    size_t from = out->len;
    if (base64_encode(out, (const unsigned char *)p, n) != 0)
        abort();
    size_t j = from;
    for (size_t i = from; i < out->len; i++) {
        char c = out->data[i];
        if (c != '=')
            out->data[j++] = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    out->len = j;
    out->data[j] = '\0';
}

/* "HEADER\nPAYLOAD" encoded and signed with the secret. */
static void signed_token(struct buf *tok, const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    size_t hlen = nl ? (size_t)(nl - p) : 0;
    const char *header = nl ? p : "{\"alg\":\"HS256\"}";
    append_b64url(tok, header, nl ? hlen : strlen(header));
    if (buf_append(tok, ".", 1) != 0)
        abort();
    append_b64url(tok, nl ? nl + 1 : p, nl ? n - hlen - 1 : n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)tok->data,
              tok->len, mac, &maclen))
        abort();
    if (buf_append(tok, ".", 1) != 0)
        abort();
    append_b64url(tok, (const char *)mac, maclen);
}

static void check_bearer(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    if (!copy)
        return;
    memcpy(copy, data, size);
    copy[size] = '\0';
    size_t len = 0;
    const char *t = auth_bearer(copy, &len);
    if (t) {
        assert(t > copy && t + len <= copy + strlen(copy) && len > 0);
        assert(!memchr(t, ' ', len));
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!auth)
        setup();
    struct buf tok = BUF_INIT;
    const char *p = (const char *)data;
    size_t n = size;
    if (size > 0 && data[0] == 0x01) {
        signed_token(&tok, p + 1, size - 1);
        p = tok.data;
        n = tok.len;
    }
    struct auth_identity id;
    const char *why = auth_verify(auth, p, n, &id);
    if (why) {
        assert(!id.sub[0] && !id.admin && !id.exp);
    } else {
        assert(n <= AUTH_MAX_TOKEN);
        assert(auth_valid_sub(id.sub, strlen(id.sub)));
        assert(id.admin == 0 || id.admin == 1);
    }
    buf_free(&tok);
    check_bearer(data, size);
    return 0;
}
