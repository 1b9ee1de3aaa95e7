/*-------------------------------------------------------------------------
 *
 * sha256.h
 *	  SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), self-contained.
 *
 * Server independent: no PostgreSQL headers, no allocation.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BE_SHA256_H
#define BE_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN	32
#define SHA256_BLOCK_LEN	64

typedef struct Sha256Ctx
{
	uint32_t	state[8];
	uint64_t	total;			/* bytes hashed so far */
	uint8_t		block[SHA256_BLOCK_LEN];
	size_t		blen;			/* bytes pending in block */
} Sha256Ctx;

typedef struct HmacSha256Ctx
{
	Sha256Ctx	inner;
	Sha256Ctx	outer;
} HmacSha256Ctx;

extern void sha256_init(Sha256Ctx *ctx);
extern void sha256_update(Sha256Ctx *ctx, const void *data, size_t len);
extern void sha256_final(Sha256Ctx *ctx, uint8_t out[SHA256_DIGEST_LEN]);
extern void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_LEN]);

extern void hmac_sha256_init(HmacSha256Ctx *ctx, const void *key, size_t keylen);
extern void hmac_sha256_update(HmacSha256Ctx *ctx, const void *data, size_t len);
extern void hmac_sha256_final(HmacSha256Ctx *ctx, uint8_t out[SHA256_DIGEST_LEN]);
extern void hmac_sha256(const void *key, size_t keylen,
						const void *msg, size_t msglen,
						uint8_t out[SHA256_DIGEST_LEN]);

/* Constant-time comparison: time depends only on n, never on contents. */
extern bool sha256_ct_equal(const void *a, const void *b, size_t n);

#endif							/* BE_SHA256_H */
