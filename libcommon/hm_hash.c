#include "hm_hash.h"
#include "hm_error.h"
#include "hm_file.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HASH_BUF (256 * 1024)

/* 1 for the lowercase hex digits. */
static const unsigned char hexdigit[256] = {
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
	['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
};

enum hm_hash_algo
hm_hash_algo_of(const char *hex)
{
	const unsigned char *u = (const unsigned char *)hex;
	unsigned bad = 0;
	size_t n;

	if (!hex)
		return HM_HASH_NONE;
	n = strlen(hex);
	if (n != HM_HASH_MD5 && n != HM_HASH_SHA256)
		return HM_HASH_NONE;
	/* Branch-free: this runs for every checksum of every state read. */
	for (size_t i = 0; i < n; i++)
		bad |= hexdigit[u[i]] ^ 1;
	return bad ? HM_HASH_NONE : (enum hm_hash_algo)n;
}

static EVP_MD *md5, *sha1, *sha256;

static void
release(void)
{
	EVP_MD_free(md5);
	EVP_MD_free(sha1);
	EVP_MD_free(sha256);
	md5 = sha1 = sha256 = NULL;
}
static pthread_once_t once = PTHREAD_ONCE_INIT;

/*
 * Fetch the digests once: OpenSSL 3 otherwise looks each up again on
 * every init (a lock and a hash table per file).
 */
static void
fetch(void)
{
	md5 = EVP_MD_fetch(NULL, "MD5", NULL);
	sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	atexit(release);
}

static const EVP_MD *
md_of(enum hm_hash_algo algo)
{
	pthread_once(&once, fetch);
	if (algo == HM_HASH_MD5)
		return md5 ? md5 : EVP_md5();
	if (algo == HM_HASH_SHA1)
		return sha1 ? sha1 : EVP_sha1();
	return sha256 ? sha256 : EVP_sha256();
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
		if (!EVP_DigestUpdate(ctx, scratch, (size_t)got))
			goto out;
		total += (size_t)got;
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

struct hm_hash_ctx *
hm_hash_begin(enum hm_hash_algo algo)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx && !EVP_DigestInit_ex(ctx, md_of(algo), NULL)) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	if (!ctx)
		errno = ENOMEM;
	return (struct hm_hash_ctx *)ctx;
}

int
hm_hash_update(struct hm_hash_ctx *ctx, const void *buf, size_t len)
{
	return EVP_DigestUpdate((EVP_MD_CTX *)ctx, buf, len) ? 0 : -1;
}

int
hm_hash_end(struct hm_hash_ctx *ctx, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n;
	int r = -1;

	if (ctx && EVP_DigestFinal_ex((EVP_MD_CTX *)ctx, md, &n)) {
		to_hex(md, n, hex);
		r = 0;
	}
	EVP_MD_CTX_free((EVP_MD_CTX *)ctx);
	return r;
}

/*
 * Read fd to its end into s (and t when not NULL), copying to `to` when it
 * is not -1; *total gets the bytes read.  0, or -1 with errno set.
 */
static int
digest_stream(int fd, struct hm_hash_ctx *s, struct hm_hash_ctx *t, int to, size_t *total)
{
	char *buf = malloc(HASH_BUF);
	int r = -1;

	*total = 0;
	if (!buf)
		return -1;
	for (;;) {
		ssize_t got = read(fd, buf, HASH_BUF);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			break;
		if (got == 0) {
			r = 0;
			break;
		}
		*total += (size_t)got;
		if (hm_hash_update(s, buf, (size_t)got) < 0 ||
		    (t && hm_hash_update(t, buf, (size_t)got) < 0) ||
		    (to >= 0 && hm_write_all(to, buf, (size_t)got) < 0))
			break;
	}
	free(buf);
	return r;
}

int
hm_hash_fd_blob(int fd, size_t size, char *sha256_hex, char *blob)
{
	struct hm_hash_ctx *s = hm_hash_begin(HM_HASH_SHA256), *g = hm_hash_begin(HM_HASH_SHA1);
	char head[32];
	size_t total;
	int r = -1, n = snprintf(head, sizeof(head), "blob %zu", size);

	if (s && g && hm_hash_update(g, head, (size_t)n + 1) == 0 &&
	    digest_stream(fd, s, g, -1, &total) == 0) {
		if (total != size)
			errno = EAGAIN; /* it changed while read */
		else
			r = 0;
	}
	if (hm_hash_end(s, sha256_hex) < 0 || hm_hash_end(g, blob) < 0)
		r = -1;
	return r;
}

int
hm_hash_copy_fd(int from, int to, char *sha256_hex)
{
	struct hm_hash_ctx *s = hm_hash_begin(HM_HASH_SHA256);
	size_t total;
	int r = s ? digest_stream(from, s, NULL, to, &total) : -1;

	if (hm_hash_end(s, sha256_hex) < 0)
		r = -1;
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
