#include "hm_file.h"
#include "hm_error.h"
#include "hm_json.h"
#include "hm_tempfile.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return hm_xstrdup(".");
	if (slash == path)
		return hm_xstrdup("/");
	return strndup(path, slash - path);
}

int
hm_fsync_dir_of(const char *path)
{
	char *dir = dir_of(path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0 || (fsync(fd) < 0 && errno != EINVAL))
		r = hm_error_errno("%s", dir);
	if (fd >= 0)
		close(fd);
	free(dir);
	return r < 0 ? hm_fail(HM_EXIT_ENV) : 0;
}

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

int
hm_file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode)
{
	char tmp[PATH_MAX + 32];
	struct hm_tempfile *t;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		hm_error_errno("%s", path);
		return hm_fail(HM_EXIT_ENV);
	}
	fd = hm_tempfile_mkstemp(tmp, mode, &t);
	if (fd < 0) {
		hm_error_errno("%s: cannot create temporary file", path);
		return hm_fail(HM_EXIT_ENV);
	}
	if (write_all(fd, buf, len) < 0 || fsync(fd) < 0) {
		hm_error_errno("%s", tmp);
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		hm_error_errno("%s", tmp);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		hm_error_errno("%s: cannot rename temporary file into place", path);
		goto fail;
	}
	hm_tempfile_forget(t);
	return hm_fsync_dir_of(path);
fail:
	if (fd >= 0)
		close(fd);
	hm_tempfile_remove(t);
	return hm_fail(HM_EXIT_ENV);
}

int
hm_file_read(const char *path, char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0) {
		hm_error_errno("%s", path);
		return hm_fail(HM_EXIT_ENV);
	}
	r = hm_read_fd(fd, buf, len);
	if (r < 0)
		hm_error_errno("%s", path);
	close(fd);
	return r < 0 ? hm_fail(HM_EXIT_ENV) : 0;
}

int
hm_file_copy(const char *src, const char *dst)
{
	char *buf;
	size_t len;
	int r;

	if (hm_file_read(src, &buf, &len) < 0)
		return -1;
	r = hm_file_write_atomic(dst, buf, len, 0600);
	free(buf);
	return r;
}

int
hm_mkdir_p(const char *path, mode_t mode)
{
	char *p = hm_xstrdup(path);
	struct stat st;

	for (char *s = p + 1;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			hm_error_errno("%s: cannot create directory", p);
			free(p);
			return hm_fail(HM_EXIT_ENV);
		}
		*s = c;
		if (c == '\0')
			break;
	}
	if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		hm_error_errno("%s", p);
		free(p);
		return hm_fail(HM_EXIT_ENV);
	}
	free(p);
	return 0;
}

int
hm_file_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int
hm_path_safe_relative(const char *key, const char **why)
{
	const char *w = NULL;
	const char *c = key;

	if (*key == '\0')
		w = "empty path";
	else if (*key == '/')
		w = "absolute path";
	else if (strlen(key) > PATH_MAX)
		w = "path too long";
	for (const unsigned char *u = (const unsigned char *)key; !w && *u; u++)
		if (*u < 0x20 || *u == 0x7f)
			w = "control character in path";
	while (!w && *c) {
		size_t n = strcspn(c, "/");

		if (n == 0)
			w = "empty path component";
		else if (n == 1 && c[0] == '.')
			w = "'.' component";
		else if (n == 2 && c[0] == '.' && c[1] == '.')
			w = "'..' component";
		c += n;
		if (*c == '/') {
			c++;
			if (*c == '\0')
				w = "trailing slash";
		}
	}
	if (why)
		*why = w;
	return w == NULL;
}

char *
hm_path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);

	if (n > 0 && dir[n - 1] == '/')
		return hm_xasprintf("%s%s", dir, name);
	return hm_xasprintf("%s/%s", dir, name);
}

static struct {
	const char *pattern, *skip;
	int recurse, removed, failed;
	time_t since, until;
} stale;

static int
remove_stale_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *name = path + ftw->base;

	if (ftw->level == 0)
		return FTW_CONTINUE;
	if (type == FTW_D)
		return !stale.recurse || (stale.skip && strcmp(name, stale.skip) == 0)
			       ? FTW_SKIP_SUBTREE
			       : FTW_CONTINUE;
	if (type != FTW_F || fnmatch(stale.pattern, name, 0) != 0 || st->st_mtime < stale.since ||
	    st->st_mtime >= stale.until)
		return FTW_CONTINUE;
	if (unlink(path) == 0) {
		hm_debug("removed %s, left by a killed process", path);
		stale.removed++;
	} else if (errno != ENOENT) {
		hm_error_errno("%s", path);
		stale.failed = 1;
	}
	return FTW_CONTINUE;
}

int
hm_file_remove_stale(const char *dir, const char *pattern, int recurse, const char *skip,
		     time_t since, time_t until)
{
	stale.pattern = pattern;
	stale.skip = skip;
	stale.recurse = recurse;
	stale.removed = stale.failed = 0;
	stale.since = since;
	stale.until = until;
	if (nftw(dir, remove_stale_entry, 16, FTW_PHYS | FTW_ACTIONRETVAL) < 0 && errno != ENOENT) {
		hm_error_errno("%s", dir);
		return hm_fail(HM_EXIT_ENV);
	}
	return stale.failed ? hm_fail(HM_EXIT_ENV) : stale.removed;
}
