/* The organisation root key file: Ed25519 secret key sealed with XChaCha20-Poly1305 under
 * an Argon2id key derived from the passphrase (layout in proto/TRUST.md). */
#include "zila/trust.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

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
	int r = ZILA_EINTERNAL, fd = -1;
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

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = errno == EEXIST ? ZILA_EEXIST : ZILA_EIO;
		goto out;
	}
	size_t off = 0;
	while (off < b.len) {
		ssize_t w = write(fd, b.p + off, b.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = ZILA_EIO;
			goto out;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		r = ZILA_EIO;
		goto out;
	}
	if (sk_out != NULL) {
		*sk_out = sk;
		sk = NULL;
	}
	r = 0;
out:
	if (fd >= 0 && close(fd) != 0 && r == 0)
		r = ZILA_EIO;
	if (r != 0 && fd >= 0)
		unlink(path);
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
	int r = ZILA_EIO, fd = -1;
	uint8_t file[FILE_LEN + 1], *key = sodium_malloc(32), *sk = sodium_malloc(64);
	size_t len = 0;
	*sk_out = NULL;

	if (key == NULL || sk == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = errno == ENOENT ? ZILA_ENOTFOUND : ZILA_EIO;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, file + len, sizeof(file) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(file))
			break;
	}
	if (len != FILE_LEN || memcmp(file, magic, 8) != 0) {
		r = ZILA_EFORMAT;
		goto out;
	}
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
	if (fd >= 0)
		close(fd);
	sodium_memzero(file, sizeof(file));
	sodium_free(key);
	sodium_free(sk);
	return r;
}
