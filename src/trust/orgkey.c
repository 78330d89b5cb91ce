/* The organisation root key file: Ed25519 secret key sealed with XChaCha20-Poly1305 under
 * an Argon2id key derived from the passphrase (layout in proto/TRUST.md). */
#include "zila/trust.h"

#include <sodium.h>
#include <string.h>

#include "zila/os.h"

static const uint8_t magic[8] = { 'Z', 'I', 'L', 'A', 'O', 'R', 'G', '1' };
#define SALT_LEN crypto_pwhash_SALTBYTES
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define HEAD_LEN (8 + 32 + 8 + 8 + SALT_LEN)
#define FILE_LEN (HEAD_LEN + NONCE_LEN + 64 + crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define MEM_CAP ((size_t)1 << 30) /* refuse files asking for more than 1 GiB */

const struct zila_pwcost zila_pwcost_default = { crypto_pwhash_OPSLIMIT_MODERATE, crypto_pwhash_MEMLIMIT_MODERATE };
const struct zila_pwcost zila_pwcost_min = { crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN };

static int derive(uint8_t key[32], const char *pass, size_t pass_len, const uint8_t *salt, unsigned long long ops,
		  size_t mem)
{
	if (crypto_pwhash(key, 32, pass, pass_len, salt, ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
		return ZILA_ENOMEM;
	return 0;
}

int zila_org_key_create(const char *path, const char *pass, size_t pass_len, const struct zila_pwcost *cost,
			uint8_t root_pk[32], uint8_t **sk_out)
{
	int r = ZILA_EINTERNAL;
	uint8_t *sk = sodium_malloc(64), *key = sodium_malloc(32);
	struct zila_buf b;
	zila_buf_init(&b, FILE_LEN);
	if (sk_out != NULL)
		*sk_out = NULL;

	if (sk == NULL || key == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	crypto_sign_keypair(root_pk, sk);
	uint8_t salt[SALT_LEN], nonce[NONCE_LEN];
	randombytes_buf(salt, sizeof(salt));
	randombytes_buf(nonce, sizeof(nonce));
	if ((r = zila_buf_put(&b, magic, 8)) != 0 || (r = zila_buf_put(&b, root_pk, 32)) != 0 ||
	    (r = zila_buf_put_u64be(&b, cost->ops)) != 0 || (r = zila_buf_put_u64be(&b, cost->mem)) != 0 ||
	    (r = zila_buf_put(&b, salt, sizeof(salt))) != 0 || (r = zila_buf_put(&b, nonce, sizeof(nonce))) != 0)
		goto out;
	if ((r = derive(key, pass, pass_len, salt, cost->ops, cost->mem)) != 0)
		goto out;
	if ((r = zila_buf_reserve(&b, 64 + crypto_aead_xchacha20poly1305_ietf_ABYTES)) != 0)
		goto out;
	unsigned long long clen;
	/* The header is the associated data, so the cost and public key cannot be swapped. */
	crypto_aead_xchacha20poly1305_ietf_encrypt(b.p + b.len, &clen, sk, 64, b.p, HEAD_LEN, NULL, nonce, key);
	b.len += (size_t)clen;

	if ((r = zila_os_write_new(path, b.p, b.len, 0600, NULL)) != 0)
		goto out;
	if (sk_out != NULL) {
		*sk_out = sk;
		sk = NULL;
	}
	r = 0;
out:
	if (r != 0 && sk_out != NULL && *sk_out != NULL) {
		sodium_free(*sk_out);
		*sk_out = NULL;
	}
	sodium_free(sk);
	sodium_free(key);
	zila_buf_release(&b);
	return r;
}

int zila_org_key_unlock(const char *path, const char *pass, size_t pass_len, uint8_t **sk_out, uint8_t root_pk[32])
{
	int r = ZILA_EIO;
	uint8_t file[FILE_LEN], *key = sodium_malloc(32), *sk = sodium_malloc(64);
	struct zila_buf fb;
	zila_buf_init(&fb, FILE_LEN);
	*sk_out = NULL;

	if (key == NULL || sk == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	if ((r = zila_os_read_file(path, FILE_LEN, &fb, NULL, NULL)) != 0) {
		if (r == ZILA_ETOOBIG)
			r = ZILA_EFORMAT;
		goto out;
	}
	if (fb.len != FILE_LEN || memcmp(fb.p, magic, 8) != 0) {
		r = ZILA_EFORMAT;
		goto out;
	}
	memcpy(file, fb.p, FILE_LEN);
	struct zila_view v = zila_view_make(file + 40, 16);
	uint64_t ops, mem;
	if ((r = zila_view_get_u64be(&v, &ops)) != 0 || (r = zila_view_get_u64be(&v, &mem)) != 0)
		goto out;
	if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > 16 || mem < crypto_pwhash_MEMLIMIT_MIN || mem > MEM_CAP) {
		r = ZILA_EFORMAT;
		goto out;
	}
	if ((r = derive(key, pass, pass_len, file + 56, ops, (size_t)mem)) != 0)
		goto out;
	unsigned long long plen;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(sk, &plen, NULL, file + HEAD_LEN + NONCE_LEN,
						       FILE_LEN - HEAD_LEN - NONCE_LEN, file, HEAD_LEN,
						       file + HEAD_LEN, key) != 0 ||
	    plen != 64) {
		r = ZILA_EPASSPHRASE;
		goto out;
	}
	/* The public half stored in the key must match the header. */
	if (sodium_memcmp(sk + 32, file + 8, 32) != 0) {
		r = ZILA_EFORMAT;
		goto out;
	}
	memcpy(root_pk, file + 8, 32);
	sodium_mprotect_readonly(sk);
	*sk_out = sk;
	sk = NULL;
	r = 0;
out:
	zila_buf_release(&fb);
	sodium_memzero(file, sizeof(file));
	sodium_free(key);
	sodium_free(sk);
	return r;
}
