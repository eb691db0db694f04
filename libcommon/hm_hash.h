/*
 * hm_hash.h - file checksums: SHA-256 (what heimdal writes) and MD5 (legacy
 * states), through OpenSSL's EVP so SHA-NI is used where the CPU has it.
 *
 * A checksum is lowercase hex: 64 digits for SHA-256, 32 for MD5.  The
 * algorithm of an existing checksum is told by its length.
 */
#ifndef HM_HASH_H
#define HM_HASH_H

#include <stddef.h>

enum hm_hash_algo {
	HM_HASH_NONE = 0,  /* not a checksum heimdal knows */
	HM_HASH_MD5 = 32,  /* the value is the hex length */
	HM_HASH_SHA1 = 40, /* git's object ids only, never a checksum */
	HM_HASH_SHA256 = 64,
};

#define HM_HASH_HEX_MAX 65 /* room for the longest hex digest and its NUL */

/* The algorithm of a hex checksum by its length and digits; HM_HASH_NONE if neither. */
enum hm_hash_algo hm_hash_algo_of(const char *hex);

/* Digest buf[0..len) with algo into hex (HM_HASH_HEX_MAX bytes).  0, or -1 (error printed). */
int hm_hash_buf(enum hm_hash_algo algo, const void *buf, size_t len, char *hex);

/*
 * Digest everything readable from fd (until EOF) with algo into hex, reading
 * through scratch[0..scratch_len) (pass NULL to use an internal buffer).
 * size_hint, when not 0, is the expected size (fstat's): a regular file read
 * short of a full buffer is then taken to be at its end, which saves one
 * read(2) per small file.  Returns 0, or -1 with errno set (nothing printed),
 * so threads can report errors themselves.
 */
int hm_hash_fd(enum hm_hash_algo algo, int fd, char *scratch, size_t scratch_len, size_t size_hint,
	       char *hex);

/*
 * A digest fed piece by piece, for content that is read once and used twice
 * (copied and checked).  hm_hash_begin: NULL with errno on failure;
 * hm_hash_update: 0 or -1; hm_hash_end writes hex, frees ctx (NULL too), 0
 * or -1.  Nothing is printed.
 */
struct hm_hash_ctx;
struct hm_hash_ctx *hm_hash_begin(enum hm_hash_algo algo);
int hm_hash_update(struct hm_hash_ctx *ctx, const void *buf, size_t len);
int hm_hash_end(struct hm_hash_ctx *ctx, char *hex);

/*
 * One read of fd (positioned at its start, size bytes long by fstat) gives
 * its SHA-256 into sha256 and git's blob id into blob (SHA-1 over "blob
 * SIZE\0" and the content, 41 bytes).  0, or -1 with errno: EAGAIN when the
 * content was not size bytes long (it changed while read).
 */
int hm_hash_fd_blob(int fd, size_t size, char *sha256, char *blob);

/*
 * Copy everything read from `from` (until EOF) to `to`, the SHA-256 of what
 * was copied into sha256.  0, or -1 with errno (nothing printed).
 */
int hm_hash_copy_fd(int from, int to, char *sha256);

/* Digest the file at path (following symlinks).  0, or -1 (error naming path printed). */
int hm_hash_file(enum hm_hash_algo algo, const char *path, char *hex);

#endif
