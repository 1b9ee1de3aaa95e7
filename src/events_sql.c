/*-------------------------------------------------------------------------
 *
 * events_sql.c
 *	  Cryptographic helpers for delivery-event webhooks.
 *
 * broadcast.record_events() (sql/broadcast_engine--1.1--1.2.sql) does the
 * work in SQL; these functions give it the primitives SQL lacks:
 *
 *	_hmac_sha256(key, data)		 Mailgun and Svix (Resend) signatures
 *	_ct_equal(a, b)				 constant-time comparison of two MACs
 *	_rsa_verify(pem, data, sig, digest)
 *								 Amazon SNS signatures: RSA PKCS#1 v1.5 with
 *								 SHA1 (SignatureVersion 1) or SHA256 (2),
 *								 checked against the public key of the
 *								 signing certificate stored with the
 *								 integration
 *	_check_certificate(pem)		 raises unless pem is one X.509 certificate
 *								 with an RSA public key
 *	_ecdsa_verify(key, data, sig)
 *								 SendGrid's signed Event Webhook: ECDSA
 *								 P-256 with SHA-256, the signature DER
 *								 encoded, checked against the public key
 *								 SendGrid shows (base64 of its DER
 *								 SubjectPublicKeyInfo)
 *	_check_ec_public_key(key)	 raises unless key is such a P-256 key
 *
 * HMAC uses src/sha256.c; RSA uses OpenSSL's libcrypto, which libcurl
 * already loads into the server (docs/events.md explains the choice).
 * Nothing here touches the network: the certificate is whatever the
 * operator stored, never fetched from the URL a payload names.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/base64.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "sha256.h"

PG_FUNCTION_INFO_V1(be_hmac_sha256);
PG_FUNCTION_INFO_V1(be_ct_equal);
PG_FUNCTION_INFO_V1(be_rsa_verify);
PG_FUNCTION_INFO_V1(be_check_certificate);
PG_FUNCTION_INFO_V1(be_ecdsa_verify);
PG_FUNCTION_INFO_V1(be_check_ec_public_key);

/* be_hmac_sha256(key bytea, data bytea) returns bytea */
Datum
be_hmac_sha256(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	bytea	   *data = PG_GETARG_BYTEA_PP(1);
	bytea	   *result = (bytea *) palloc(VARHDRSZ + SHA256_DIGEST_LEN);

	hmac_sha256(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key),
				VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data),
				(uint8_t *) VARDATA(result));
	SET_VARSIZE(result, VARHDRSZ + SHA256_DIGEST_LEN);
	PG_RETURN_BYTEA_P(result);
}

/*
 * be_ct_equal(a bytea, b bytea) returns boolean
 *
 * The time taken depends on the lengths only, never on where the inputs
 * differ.  Lengths are not secret (a MAC's length is public).
 */
Datum
be_ct_equal(PG_FUNCTION_ARGS)
{
	bytea	   *a = PG_GETARG_BYTEA_PP(0);
	bytea	   *b = PG_GETARG_BYTEA_PP(1);

	if (VARSIZE_ANY_EXHDR(a) != VARSIZE_ANY_EXHDR(b))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(sha256_ct_equal(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)));
}

/* the certificate's RSA public key, or NULL (with why in *why) */
static EVP_PKEY *
load_rsa_key(text *pem, const char **why)
{
	BIO		   *bio;
	X509	   *cert;
	EVP_PKEY   *key;

	bio = BIO_new_mem_buf(VARDATA_ANY(pem), (int) VARSIZE_ANY_EXHDR(pem));
	if (bio == NULL)
	{
		*why = "out of memory";
		return NULL;
	}
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (cert == NULL)
	{
		ERR_clear_error();
		*why = "it is not a PEM-encoded X.509 certificate";
		return NULL;
	}
	key = X509_get_pubkey(cert);
	X509_free(cert);
	if (key == NULL)
	{
		ERR_clear_error();
		*why = "its public key cannot be read";
		return NULL;
	}
	if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA)
	{
		EVP_PKEY_free(key);
		*why = "its public key is not an RSA key";
		return NULL;
	}
	return key;
}

/*
 * be_rsa_verify(cert_pem text, data bytea, signature bytea, digest text)
 *	returns boolean
 *
 * digest is 'sha1' or 'sha256'.  False for a wrong signature; an ERROR for
 * a certificate that cannot be used (that is a configuration problem, not
 * a forged payload).
 */
Datum
be_rsa_verify(PG_FUNCTION_ARGS)
{
	text	   *pem = PG_GETARG_TEXT_PP(0);
	bytea	   *data = PG_GETARG_BYTEA_PP(1);
	bytea	   *sig = PG_GETARG_BYTEA_PP(2);
	char	   *digest = text_to_cstring(PG_GETARG_TEXT_PP(3));
	const EVP_MD *md;
	const char *why = NULL;
	EVP_PKEY   *key;
	EVP_MD_CTX *ctx;
	int			rc;

	if (strcmp(digest, "sha1") == 0)
		md = EVP_sha1();
	else if (strcmp(digest, "sha256") == 0)
		md = EVP_sha256();
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsupported signature digest \"%s\"", digest),
				 errhint("Use \"sha1\" or \"sha256\".")));

	key = load_rsa_key(pem, &why);
	if (key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signing certificate"),
				 errdetail("The stored certificate cannot be used: %s.", why)));

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
	{
		EVP_PKEY_free(key);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	rc = EVP_DigestVerifyInit(ctx, NULL, md, NULL, key);
	if (rc == 1)
		rc = EVP_DigestVerify(ctx, (const unsigned char *) VARDATA_ANY(sig), VARSIZE_ANY_EXHDR(sig),
							  (const unsigned char *) VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data));
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	ERR_clear_error();
	PG_RETURN_BOOL(rc == 1);
}

/* be_check_certificate(cert_pem text) returns void */
Datum
be_check_certificate(PG_FUNCTION_ARGS)
{
	text	   *pem = PG_GETARG_TEXT_PP(0);
	const char *why = NULL;
	EVP_PKEY   *key = load_rsa_key(pem, &why);

	if (key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signing certificate"),
				 errdetail("The value cannot be used to verify signatures: %s.", why),
				 errhint("Store the PEM certificate that SigningCertURL points to, from \"-----BEGIN CERTIFICATE-----\" to \"-----END CERTIFICATE-----\".")));
	EVP_PKEY_free(key);
	PG_RETURN_VOID();
}

/*
 * The P-256 public key in key (base64 of a DER SubjectPublicKeyInfo, as
 * SendGrid's "Verification Key" is shown, or the same as a PEM "PUBLIC
 * KEY"), or NULL with why in *why.
 */
static EVP_PKEY *
load_ec_key(text *key, const char **why)
{
	const char *b64 = text_to_cstring(key);
	int			len = (int) strlen(b64);
	unsigned char *der;
	const unsigned char *p;
	int			dlen;
	EVP_PKEY   *pk;
	char		curve[64];
	size_t		clen = 0;

	/* a PEM "PUBLIC KEY" (the SDKs' form): its base64 between the armour lines */
	if (len > 11 && strncmp(b64, "-----BEGIN ", 11) == 0)
	{
		const char *body = memchr(b64, '\n', len);
		const char *end = body ? strstr(body, "-----END ") : NULL;

		if (body == NULL || end == NULL || end - b64 > len)
		{
			*why = "it is not a PEM public key";
			return NULL;
		}
		b64 = body + 1;
		len = (int) (end - b64);
	}
	/* white space (PEM lines, copy and paste) is not part of the base64 */
	{
		char	   *packed = palloc(len + 1);
		int			n = 0;
		int			i;

		for (i = 0; i < len; i++)
			if (!(b64[i] == ' ' || b64[i] == '\n' || b64[i] == '\r' || b64[i] == '\t'))
				packed[n++] = b64[i];
		packed[n] = '\0';
		b64 = packed;
		len = n;
	}
	if (len == 0 || len > 4096)
	{
		*why = "it is empty or too long";
		return NULL;
	}
	der = palloc(pg_b64_dec_len(len) + 1);
	dlen = pg_b64_decode(b64, len, (char *) der, pg_b64_dec_len(len) + 1);
	if (dlen <= 0)
	{
		*why = "it is not base64";
		return NULL;
	}
	p = der;
	pk = d2i_PUBKEY(NULL, &p, dlen);
	if (pk == NULL || p != der + dlen)
	{
		if (pk)
			EVP_PKEY_free(pk);
		ERR_clear_error();
		*why = "it is not a DER-encoded public key";
		return NULL;
	}
	if (EVP_PKEY_base_id(pk) != EVP_PKEY_EC ||
		EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve), &clen) != 1 ||
		strcmp(curve, "prime256v1") != 0)
	{
		EVP_PKEY_free(pk);
		ERR_clear_error();
		*why = "it is not an ECDSA P-256 key";
		return NULL;
	}
	return pk;
}

/*
 * be_ecdsa_verify(public_key text, data bytea, signature bytea) returns boolean
 *
 * False for a wrong or malformed signature; an ERROR for a key that cannot
 * be used (a configuration problem, not a forged payload).
 */
Datum
be_ecdsa_verify(PG_FUNCTION_ARGS)
{
	text	   *key = PG_GETARG_TEXT_PP(0);
	bytea	   *data = PG_GETARG_BYTEA_PP(1);
	bytea	   *sig = PG_GETARG_BYTEA_PP(2);
	const char *why = NULL;
	EVP_PKEY   *pk = load_ec_key(key, &why);
	EVP_MD_CTX *ctx;
	int			rc;

	if (pk == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid webhook verification key"),
				 errdetail("The stored key cannot be used: %s.", why)));
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
	{
		EVP_PKEY_free(pk);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	rc = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk);
	if (rc == 1)
		rc = EVP_DigestVerify(ctx, (const unsigned char *) VARDATA_ANY(sig), VARSIZE_ANY_EXHDR(sig),
							  (const unsigned char *) VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data));
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	PG_RETURN_BOOL(rc == 1);
}

/* be_check_ec_public_key(public_key text) returns void */
Datum
be_check_ec_public_key(PG_FUNCTION_ARGS)
{
	text	   *key = PG_GETARG_TEXT_PP(0);
	const char *why = NULL;
	EVP_PKEY   *pk = load_ec_key(key, &why);

	if (pk == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid SendGrid webhook verification key"),
				 errdetail("The value cannot be used to verify signatures: %s.", why),
				 errhint("Copy the \"Verification Key\" shown when signed event webhooks are enabled in SendGrid (base64, starting with \"MFkw\").")));
	EVP_PKEY_free(pk);
	PG_RETURN_VOID();
}
