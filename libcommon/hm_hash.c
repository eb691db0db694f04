#include "hm_hash.h"
#include "hm_error.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HASH_BUF (256 * 1024)

enum hm_hash_algo
hm_hash_algo_of(const char *hex)
{
	size_t n = 0;

	if (!hex)
		return HM_HASH_NONE;
	for (; hex[n]; n++)
		if (!((hex[n] >= '0' && hex[n] <= '9') || (hex[n] >= 'a' && hex[n] <= 'f')))
			return HM_HASH_NONE;
	if (n == HM_HASH_MD5 || n == HM_HASH_SHA256)
		return (enum hm_hash_algo)n;
	return HM_HASH_NONE;
}

static const EVP_MD *
md_of(enum hm_hash_algo algo)
{
	return algo == HM_HASH_MD5 ? EVP_md5() : EVP_sha256();
}

static void
to_hex(const unsigned char *md, unsigned int n, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (unsigned int i = 0; i < n; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * n] = '\0';
}

int
hm_hash_buf(enum hm_hash_algo algo, const void *buf, size_t len, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n;

	if (!EVP_Digest(buf, len, md, &n, md_of(algo), NULL))
		return hm_error("cannot compute a digest (OpenSSL)");
	to_hex(md, n, hex);
	return 0;
}

int
hm_hash_fd(enum hm_hash_algo algo, int fd, char *scratch, size_t scratch_len, size_t size_hint,
	   char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n;
	char *own = NULL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t total = 0;
	int r = -1;

	if (!ctx) {
		errno = ENOMEM;
		return -1;
	}
	if (!scratch) {
		scratch = own = malloc(HASH_BUF);
		scratch_len = HASH_BUF;
		if (!own) {
			EVP_MD_CTX_free(ctx);
			errno = ENOMEM;
			return -1;
		}
	}
	if (!EVP_DigestInit_ex(ctx, md_of(algo), NULL))
		goto out;
	for (;;) {
		ssize_t got = read(fd, scratch, scratch_len);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (got == 0)
			break;
		if (!EVP_DigestUpdate(ctx, scratch, got))
			goto out;
		total += got;
		/* A regular file read short of the buffer, at its known size, is at EOF. */
		if (size_hint && (size_t)got < scratch_len && total >= size_hint)
			break;
	}
	if (!EVP_DigestFinal_ex(ctx, md, &n))
		goto out;
	to_hex(md, n, hex);
	r = 0;
out:
	if (r < 0 && errno == 0)
		errno = EIO;
	EVP_MD_CTX_free(ctx);
	free(own);
	return r;
}

int
hm_hash_file(enum hm_hash_algo algo, const char *path, char *hex)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return hm_error_errno("%s", path);
	r = hm_hash_fd(algo, fd, NULL, 0, 0, hex);
	if (r < 0)
		hm_error_errno("%s", path);
	close(fd);
	return r;
}
