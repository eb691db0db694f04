#include "hm_machine.h"
#include "hm_error.h"
#include "hm_file.h"
#include "hm_term.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

const char *
hm_home(void)
{
	static char *home;
	const char *h;

	if (home)
		return home;
	h = getenv("HEIMDAL_HOME");
	if (h && *h) {
		home = hm_xstrdup(h);
	} else {
		h = getenv("HOME");
		if (!h || !*h)
			hm_die(HM_EXIT_ENV, "neither HEIMDAL_HOME nor HOME is set");
		home = hm_path_join(h, ".heimdal");
	}
	return home;
}

char *
hm_home_path(const char *name)
{
	return hm_path_join(hm_home(), name);
}

int
hm_home_ensure(void)
{
	return hm_mkdir_p(hm_home(), 0700);
}

int
hm_uuid_v4(char buf[37])
{
	unsigned char b[16];
	size_t got = 0;

	/* The kernel's RNG: OpenSSL's takes milliseconds to initialise, more than
	 * taking a lock costs altogether. */
	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

		if (n < 0 && errno != EINTR)
			return hm_error_errno("getrandom");
		if (n > 0)
			got += (size_t)n;
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
	return 0;
}

static int
valid_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return 0;
	return 1;
}

static int
read_id(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "re");
	char *nl;

	if (!f)
		return -1;
	if (!fgets(out, (int)len, f)) {
		fclose(f);
		errno = EINVAL;
		return -1;
	}
	fclose(f);
	nl = strchr(out, '\n');
	if (nl)
		*nl = '\0';
	if (!valid_id(out)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

const char *
hm_machine_id(void)
{
	static char id[130];
	char *path, *tmp;
	int fd;

	if (id[0])
		return id;
	path = hm_home_path("machine-id");
	if (read_id(path, id, sizeof(id)) == 0)
		goto out;
	if (errno != ENOENT && errno != EINVAL) {
		/* HEIMDAL_HOME a file (ENOTDIR), unreadable (EACCES): say so. */
		hm_error_errno("%s", path);
		id[0] = '\0';
		free(path);
		return NULL;
	}
	if (errno != ENOENT) {
		hm_error("%s: not a valid machine id (remove it to generate a new one)", path);
		id[0] = '\0';
		free(path);
		return NULL;
	}
	if (hm_home_ensure() < 0 || hm_uuid_v4(id) < 0) {
		id[0] = '\0';
		free(path);
		return NULL;
	}
	/*
	 * Publish with link(2): of two processes generating at once, exactly one
	 * id wins and the other reads it.
	 */
	tmp = hm_xasprintf("%s.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || dprintf(fd, "%s\n", id) < 0 || fsync(fd) < 0) {
		hm_error_errno("%s", tmp);
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		goto fail;
	}
	close(fd);
	if (link(tmp, path) < 0 && errno != EEXIST) {
		hm_error_errno("%s", path);
		unlink(tmp);
		goto fail;
	}
	unlink(tmp);
	free(tmp);
	if (read_id(path, id, sizeof(id)) < 0) {
		hm_error_errno("%s", path);
		id[0] = '\0';
		free(path);
		return NULL;
	}
	hm_fsync_dir_of(path);
out:
	free(path);
	return id;
fail:
	free(tmp);
	free(path);
	id[0] = '\0';
	return NULL;
}

const char *
hm_machine_hostname(void)
{
	static char host[256];
	const char *env = getenv("HEIMDAL_HOSTNAME");

	if (env && *env)
		return env;
	if (!host[0]) {
		if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
	}
	return host;
}

const char *
hm_machine_user(void)
{
	const char *u = getenv("USER");
	struct passwd *pw;

	if (u && *u)
		return u;
	pw = getpwuid(getuid());
	if (pw && pw->pw_name)
		return pw->pw_name;
	return "unknown";
}

const char *
hm_machine_os(void)
{
	static char os[65];
	struct utsname u;

	if (os[0])
		return os;
	if (uname(&u) < 0)
		return "unknown";
	for (size_t i = 0; u.sysname[i] && i < sizeof(os) - 1; i++)
		os[i] = (char)tolower((unsigned char)u.sysname[i]);
	return os;
}

const char *
hm_machine_arch(void)
{
	static char arch[65];
	struct utsname u;

	if (arch[0])
		return arch;
	if (uname(&u) < 0)
		return "unknown";
	snprintf(arch, sizeof(arch), "%s", strcmp(u.machine, "arm64") == 0 ? "aarch64" : u.machine);
	return arch;
}

int
hm_text_check(const char *what, const char *s)
{
	char safe[1024];

	if (!hm_term_has_control(s))
		return 0;
	hm_error("%s: '%s' holds a control character", what,
		 hm_term_escape(s, 0, safe, sizeof(safe)));
	return hm_fail(HM_EXIT_USAGE);
}

int
hm_machine_check(void)
{
	const char *h = getenv("HEIMDAL_HOSTNAME");

	if (hm_text_check(h && *h ? "HEIMDAL_HOSTNAME" : "hostname", hm_machine_hostname()) < 0)
		return -1;
	return hm_text_check(getenv("USER") && *getenv("USER") ? "USER" : "user",
			     hm_machine_user());
}

jv
hm_machine_info(void)
{
	const char *id = hm_machine_id();
	jv m = jv_object();

	if (!id) {
		jv_free(m);
		return jv_invalid_with_msg(jv_string("cannot determine machine id"));
	}
	m = jv_object_set(m, jv_string("id"), jv_string(id));
	m = jv_object_set(m, jv_string("hostname"), jv_string(hm_machine_hostname()));
	m = jv_object_set(m, jv_string("os"), jv_string(hm_machine_os()));
	m = jv_object_set(m, jv_string("arch"), jv_string(hm_machine_arch()));
	m = jv_object_set(m, jv_string("user"), jv_string(hm_machine_user()));
	return m;
}
