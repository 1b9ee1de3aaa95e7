/*-------------------------------------------------------------------------
 *
 * sha256.c
 *	  SHA-256 per FIPS 180-4 and HMAC-SHA256 per RFC 2104.
 *
 * Written from the specifications; checked against the NIST example
 * vectors and RFC 4231 in test/unit/test_mime.c.  Portable C, no
 * endianness assumptions.
 *
 *-------------------------------------------------------------------------
 */
#include "sha256.h"

#include <string.h>

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

#define ROTR(x, n)	(((x) >> (n)) | ((x) << (32 - (n))))

static void
sha256_compress(uint32_t st[8], const uint8_t *p)
{
	uint32_t	w[64];
	uint32_t	a, b, c, d, e, f, g, h;
	int			i;

	for (i = 0; i < 16; i++)
		w[i] = ((uint32_t) p[4 * i] << 24) | ((uint32_t) p[4 * i + 1] << 16) |
			((uint32_t) p[4 * i + 2] << 8) | (uint32_t) p[4 * i + 3];
	for (i = 16; i < 64; i++)
	{
		uint32_t	s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t	s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}

	a = st[0];
	b = st[1];
	c = st[2];
	d = st[3];
	e = st[4];
	f = st[5];
	g = st[6];
	h = st[7];
	for (i = 0; i < 64; i++)
	{
		uint32_t	S1 = ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25);
		uint32_t	ch = (e & f) ^ (~e & g);
		uint32_t	t1 = h + S1 + ch + sha256_k[i] + w[i];
		uint32_t	S0 = ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22);
		uint32_t	maj = (a & b) ^ (a & c) ^ (b & c);
		uint32_t	t2 = S0 + maj;

		h = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	st[0] += a;
	st[1] += b;
	st[2] += c;
	st[3] += d;
	st[4] += e;
	st[5] += f;
	st[6] += g;
	st[7] += h;
}

void
sha256_init(Sha256Ctx *ctx)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
	};

	memcpy(ctx->state, iv, sizeof(iv));
	ctx->total = 0;
	ctx->blen = 0;
}

void
sha256_update(Sha256Ctx *ctx, const void *data, size_t len)
{
	const uint8_t *p = data;

	ctx->total += len;
	if (ctx->blen > 0)
	{
		size_t		take = SHA256_BLOCK_LEN - ctx->blen;

		if (take > len)
			take = len;
		memcpy(ctx->block + ctx->blen, p, take);
		ctx->blen += take;
		p += take;
		len -= take;
		if (ctx->blen < SHA256_BLOCK_LEN)
			return;
		sha256_compress(ctx->state, ctx->block);
		ctx->blen = 0;
	}
	while (len >= SHA256_BLOCK_LEN)
	{
		sha256_compress(ctx->state, p);
		p += SHA256_BLOCK_LEN;
		len -= SHA256_BLOCK_LEN;
	}
	if (len > 0)
	{
		memcpy(ctx->block, p, len);
		ctx->blen = len;
	}
}

void
sha256_final(Sha256Ctx *ctx, uint8_t out[SHA256_DIGEST_LEN])
{
	uint64_t	bits = ctx->total * 8;
	int			i;

	/* Padding: 0x80, zeros, then the 64-bit big-endian bit length. */
	ctx->block[ctx->blen++] = 0x80;
	if (ctx->blen > 56)
	{
		memset(ctx->block + ctx->blen, 0, SHA256_BLOCK_LEN - ctx->blen);
		sha256_compress(ctx->state, ctx->block);
		ctx->blen = 0;
	}
	memset(ctx->block + ctx->blen, 0, 56 - ctx->blen);
	for (i = 0; i < 8; i++)
		ctx->block[56 + i] = (uint8_t) (bits >> (56 - 8 * i));
	sha256_compress(ctx->state, ctx->block);

	for (i = 0; i < 8; i++)
	{
		out[4 * i] = (uint8_t) (ctx->state[i] >> 24);
		out[4 * i + 1] = (uint8_t) (ctx->state[i] >> 16);
		out[4 * i + 2] = (uint8_t) (ctx->state[i] >> 8);
		out[4 * i + 3] = (uint8_t) ctx->state[i];
	}
	memset(ctx, 0, sizeof(*ctx));
}

void
sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_LEN])
{
	Sha256Ctx	ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, data, len);
	sha256_final(&ctx, out);
}

void
hmac_sha256_init(HmacSha256Ctx *ctx, const void *key, size_t keylen)
{
	uint8_t		k[SHA256_BLOCK_LEN];
	uint8_t		pad[SHA256_BLOCK_LEN];
	int			i;

	/* Keys longer than the block size are hashed first (RFC 2104 sec 2). */
	memset(k, 0, sizeof(k));
	if (keylen > SHA256_BLOCK_LEN)
		sha256(key, keylen, k);
	else if (keylen > 0)
		memcpy(k, key, keylen);

	for (i = 0; i < SHA256_BLOCK_LEN; i++)
		pad[i] = k[i] ^ 0x36;
	sha256_init(&ctx->inner);
	sha256_update(&ctx->inner, pad, SHA256_BLOCK_LEN);

	for (i = 0; i < SHA256_BLOCK_LEN; i++)
		pad[i] = k[i] ^ 0x5c;
	sha256_init(&ctx->outer);
	sha256_update(&ctx->outer, pad, SHA256_BLOCK_LEN);

	memset(k, 0, sizeof(k));
	memset(pad, 0, sizeof(pad));
}

void
hmac_sha256_update(HmacSha256Ctx *ctx, const void *data, size_t len)
{
	sha256_update(&ctx->inner, data, len);
}

void
hmac_sha256_final(HmacSha256Ctx *ctx, uint8_t out[SHA256_DIGEST_LEN])
{
	uint8_t		ih[SHA256_DIGEST_LEN];

	sha256_final(&ctx->inner, ih);
	sha256_update(&ctx->outer, ih, sizeof(ih));
	sha256_final(&ctx->outer, out);
	memset(ih, 0, sizeof(ih));
}

void
hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
			uint8_t out[SHA256_DIGEST_LEN])
{
	HmacSha256Ctx ctx;

	hmac_sha256_init(&ctx, key, keylen);
	hmac_sha256_update(&ctx, msg, msglen);
	hmac_sha256_final(&ctx, out);
}

bool
sha256_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a;
	const volatile uint8_t *y = b;
	uint8_t		diff = 0;
	size_t		i;

	for (i = 0; i < n; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}
