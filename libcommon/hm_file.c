#include "hm_file.h"
#include "hm_beneath.h"
#include "hm_error.h"
#include "hm_json.h"
#include "hm_tempfile.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
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
	return strndup(path, (size_t)(slash - path));
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

int
hm_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static char owner_tag[13] = "none";

void
hm_file_set_owner_tag(const char *tag)
{
	snprintf(owner_tag, sizeof(owner_tag), "%s", tag && *tag ? tag : "none");
}

char *
hm_file_temp_template(const char *name)
{
	return hm_xasprintf("%s" HM_FILE_TEMP_MARK "%ld-%s.XXXXXX", name, (long)getpid(),
			    owner_tag);
}

/*
 * The owner of a temporary's name ("NAME.heimdal-PID-TAG.XXXXXX"): 1 with
 * *pid and tag[13] set, 0 when name is not one.
 */
static int
temp_owner(const char *name, long *pid, char *tag)
{
	const char *m = NULL, *p, *dash, *dot;
	size_t n = strlen(name);
	char *end;

	/* The last mark: NAME itself may hold one. */
	for (p = strstr(name, HM_FILE_TEMP_MARK); p; p = strstr(p + 1, HM_FILE_TEMP_MARK))
		m = p;
	if (!m || n < 7 || name[n - 7] != '.')
		return 0;
	p = m + strlen(HM_FILE_TEMP_MARK);
	errno = 0;
	*pid = strtol(p, &end, 10);
	if (errno || end == p || *end != '-' || *pid <= 0)
		return 0;
	dash = end;
	dot = name + n - 7;
	if (dot - dash - 1 < 1 || dot - dash - 1 > 12)
		return 0;
	memcpy(tag, dash + 1, (size_t)(dot - dash - 1));
	tag[dot - dash - 1] = '\0';
	return 1;
}

int
hm_file_temp_is_dead(const char *name, const char *tag)
{
	char t[13];
	long pid;

	if (!tag || !temp_owner(name, &pid, t) || strcmp(t, tag) != 0)
		return 0;
	/* Its maker still runs (a tool the dead holder started): not ours to remove. */
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static struct {
	const char *tag, *skip;
	int recurse, removed, failed;
} dead;

static int
remove_dead_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *name = path + ftw->base;

	(void)st;
	if (ftw->level == 0)
		return FTW_CONTINUE;
	if (type == FTW_D)
		return !dead.recurse || (dead.skip && strcmp(name, dead.skip) == 0)
			       ? FTW_SKIP_SUBTREE
			       : FTW_CONTINUE;
	if (type != FTW_F || !hm_file_temp_is_dead(name, dead.tag))
		return FTW_CONTINUE;
	if (unlink(path) == 0) {
		hm_debug("removed %s, left by a killed process", path);
		dead.removed++;
	} else if (errno != ENOENT) {
		hm_error_errno("%s", path);
		dead.failed = 1;
	}
	return FTW_CONTINUE;
}

int
hm_file_remove_dead_temps(const char *dir, int recurse, const char *skip, const char *tag)
{
	if (!tag || !*tag)
		return 0;
	dead.tag = tag;
	dead.skip = skip;
	dead.recurse = recurse;
	dead.removed = dead.failed = 0;
	if (nftw(dir, remove_dead_entry, 16, FTW_PHYS | FTW_ACTIONRETVAL) < 0 && errno != ENOENT) {
		hm_error_errno("%s", dir);
		return hm_fail(HM_EXIT_ENV);
	}
	return dead.failed ? hm_fail(HM_EXIT_ENV) : dead.removed;
}

int
hm_file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode)
{
	char tmp[PATH_MAX + 64], *tpl = hm_file_temp_template(path);
	struct hm_tempfile *t;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s", tpl) >= (int)sizeof(tmp)) {
		free(tpl);
		errno = ENAMETOOLONG;
		hm_error_errno("%s", path);
		return hm_fail(HM_EXIT_ENV);
	}
	free(tpl);
	fd = hm_tempfile_mkstemp(tmp, mode, &t);
	if (fd < 0) {
		hm_error_errno("%s: cannot create temporary file", path);
		return hm_fail(HM_EXIT_ENV);
	}
	if (hm_write_all(fd, buf, len) < 0 || fsync(fd) < 0) {
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

/*
 * Where a chain of symbolic links starting at path ends, existing or not:
 * a new buffer, or NULL (errno ELOOP) after 40 links.
 */
static char *
link_target(const char *path)
{
	char *cur = hm_xstrdup(path);

	for (int i = 0; i < 40; i++) {
		char target[PATH_MAX], *next, *slash;
		struct stat st;
		ssize_t n;

		if (lstat(cur, &st) < 0 || !S_ISLNK(st.st_mode))
			return cur;
		if ((n = readlink(cur, target, sizeof(target) - 1)) < 0) {
			free(cur);
			return NULL;
		}
		target[n] = '\0';
		slash = strrchr(cur, '/');
		if (target[0] == '/' || !slash)
			next = hm_xstrdup(target);
		else
			next = hm_xasprintf("%.*s/%s", (int)(slash - cur), cur, target);
		free(cur);
		cur = next;
	}
	free(cur);
	errno = ELOOP;
	return NULL;
}

int
hm_file_write_output(const char *path, const void *buf, size_t len, mode_t mode)
{
	struct stat st;
	char *target;
	int fd, r;

	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* A device, a FIFO, a pipe behind /dev/fd/N: not ours to replace. */
		fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			hm_error_errno("%s", path);
			return hm_fail(HM_EXIT_ENV);
		}
		r = hm_write_all(fd, buf, len);
		if (r < 0)
			hm_error_errno("%s", path);
		if (close(fd) < 0 && r == 0)
			r = hm_error_errno("%s", path);
		return r < 0 ? hm_fail(HM_EXIT_ENV) : 0;
	}
	/* A regular file (or none): replaced where the links lead, keeping its mode. */
	if (!(target = link_target(path))) {
		hm_error_errno("%s", path);
		return hm_fail(HM_EXIT_ENV);
	}
	if (stat(target, &st) == 0)
		mode = st.st_mode & 07777;
	r = hm_file_write_atomic(target, buf, len, mode);
	free(target);
	return r;
}

/* Why a directory beneath a root could not be had (hm_beneath). */
static int
beneath_fail(const char *shown)
{
	hm_error("%s: %s", shown,
		 errno == EXDEV   ? "its directory leads outside its root; not written"
		 : errno == ELOOP ? "a symlink on its way; not written through it"
				  : strerror(errno));
	return hm_fail(HM_EXIT_ENV);
}

int
hm_file_write_beneath(int root_fd, const char *root_real, const char *rel, const char *shown,
		      const void *buf, size_t len, mode_t mode)
{
	const char *base, *slash = strrchr(shown, '/');
	char *name, *dir;
	struct hm_tempfile *t;
	int dfd = hm_beneath_parent(root_fd, root_real, rel, 0755, &base), fd;

	if (dfd < 0)
		return beneath_fail(shown);
	name = hm_file_temp_template(base);
	dir = slash ? strndup(shown, (size_t)(slash - shown)) : hm_xstrdup(".");
	fd = hm_tempfile_mkstempat(dfd, name, dir, mode, &t);
	free(dir);
	if (fd < 0) {
		hm_error_errno("%s: cannot create temporary file", shown);
		goto fail;
	}
	if (fchmod(fd, mode) < 0 || hm_write_all(fd, buf, len) < 0 || fsync(fd) < 0) {
		hm_error_errno("%s", shown);
		close(fd);
		hm_tempfile_remove(t);
		goto fail;
	}
	if (close(fd) < 0 || renameat(dfd, name, dfd, base) < 0) {
		hm_error_errno("%s: cannot write", shown);
		hm_tempfile_remove(t);
		goto fail;
	}
	hm_tempfile_forget(t);
	if (fsync(dfd) < 0 && errno != EINVAL) {
		hm_error_errno("%s", shown);
		goto fail;
	}
	free(name);
	close(dfd);
	return 0;
fail:
	free(name);
	close(dfd);
	return hm_fail(HM_EXIT_ENV);
}

int
hm_file_remove_beneath(int root_fd, const char *root_real, const char *rel, const char *shown)
{
	const char *base;
	int dfd = hm_beneath_parent(root_fd, root_real, rel, 0, &base), r = 0;

	if (dfd < 0)
		return errno == ENOENT ? 0 : beneath_fail(shown);
	if (unlinkat(dfd, base, 0) < 0 && errno != ENOENT) {
		hm_error_errno("%s", shown);
		r = hm_fail(HM_EXIT_ENV);
	}
	close(dfd);
	return r;
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
