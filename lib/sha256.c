/*
 * SHA-256 (include/llmb/sha256.h) over nettle: the digest that names
 * llmb-push's journal of a run, and those of the inline script and style
 * of `llmb report`. Debian builds nettle "fat": it picks the CPU's SHA
 * instructions at run time, several times the speed of portable C, and
 * `llmb-push --batch` hashes its whole input before its first call.
 * tests/unit/test_sha256.c checks the FIPS 180-2 vectors and
 * tests/e2e/push_resume.sh the digests against sha256sum.
 */
#include <nettle/base16.h>

#include <llmb/sha256.h>

void llmb_sha256_init(struct llmb_sha256 *s)
{
    sha256_init(&s->ctx);
    s->bytes = 0;
}

void llmb_sha256_update(struct llmb_sha256 *s, const void *data, size_t len)
{
    sha256_update(&s->ctx, len, data);
    s->bytes += len;
}

void llmb_sha256_final_raw(struct llmb_sha256 *s,
                           unsigned char out[LLMB_SHA256_LEN])
{
    sha256_digest(&s->ctx, LLMB_SHA256_LEN, out);
}

void llmb_sha256_final(struct llmb_sha256 *s, char hex[LLMB_SHA256_HEX + 1])
{
    unsigned char d[LLMB_SHA256_LEN];

    llmb_sha256_final_raw(s, d);
    base16_encode_update(hex, LLMB_SHA256_LEN, d); /* lowercase digits */
    hex[LLMB_SHA256_HEX] = '\0';
}
