/*
 * SHA-256 (FIPS 180-4), incremental: llmb-push names the journal of a run
 * by the digest of its input, and `llmb report` puts the digests of its
 * inline script and style in the report's Content-Security-Policy.
 * nettle computes it (lib/sha256.c), with the CPU's SHA instructions when
 * it has them.
 */
#ifndef LLMB_SHA256_H
#define LLMB_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include <nettle/sha2.h>

#define LLMB_SHA256_LEN 32 /* bytes of a digest */
#define LLMB_SHA256_HEX 64 /* its hex digits */

/* Embedded; llmb_sha256_init() starts it, a final function spends it. */
struct llmb_sha256 {
    struct sha256_ctx ctx;
    uint64_t bytes; /* hashed so far */
};

void llmb_sha256_init(struct llmb_sha256 *s);
void llmb_sha256_update(struct llmb_sha256 *s, const void *data, size_t len);
/* Writes the digest's bytes; s is spent. */
void llmb_sha256_final_raw(struct llmb_sha256 *s,
                           unsigned char out[LLMB_SHA256_LEN]);
/* Writes the digest as 64 lowercase hex digits and a NUL; s is spent. */
void llmb_sha256_final(struct llmb_sha256 *s, char hex[LLMB_SHA256_HEX + 1]);

#endif
