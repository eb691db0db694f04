/*
 * hm_gitprobe.c - watch ref advertisements (hm_gitprobe.h).
 *
 * Each scheme gets a smart transport whose subtransport wraps libgit2's own:
 * the streams pass everything through, and the first bytes of each
 * ref-listing answer are kept to be looked at.
 */
#include "hm_gitprobe.h"

#include <git2.h>
#include <git2/sys/transport.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_MAX 96

struct wrap_stream {
	git_smart_subtransport_stream parent;
	git_smart_subtransport_stream *inner;
	char head[HEAD_MAX];
	size_t n;
	int listing;
};

struct wrap_sub {
	git_smart_subtransport parent;
	git_smart_subtransport *inner;
	struct wrap_stream *cur; /* a persistent connection's stream serves every action */
};

static int bare;

/* The 4-hex-digit length of the pkt-line at p, or -1. */
static int
pkt_len(const char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else
			return -1;
	}
	return v;
}

/* An answer whose refs section is a flush-pkt alone (after http's "# service=" preamble). */
static int
is_bare(const char *h, size_t n)
{
	size_t at = 0;
	int len;

	if (n >= 4 && (len = pkt_len(h)) > 4 && (size_t)len + 4 <= n &&
	    memcmp(h + 4, "# service=", 10) == 0 && memcmp(h + len, "0000", 4) == 0)
		at = (size_t)len + 4;
	return n >= at + 4 && memcmp(h + at, "0000", 4) == 0;
}

static int
wrap_read(git_smart_subtransport_stream *s, char *buf, size_t size, size_t *got)
{
	struct wrap_stream *w = (struct wrap_stream *)s;
	int r = w->inner->read(w->inner, buf, size, got);

	if (r == 0 && w->listing && w->n < HEAD_MAX) {
		size_t take = *got < HEAD_MAX - w->n ? *got : HEAD_MAX - w->n;

		memcpy(w->head + w->n, buf, take);
		w->n += take;
		if (is_bare(w->head, w->n))
			bare = 1;
	}
	return r;
}

static int
wrap_write(git_smart_subtransport_stream *s, const char *buf, size_t len)
{
	struct wrap_stream *w = (struct wrap_stream *)s;

	return w->inner->write(w->inner, buf, len);
}

static void
wrap_stream_free(git_smart_subtransport_stream *s)
{
	struct wrap_stream *w = (struct wrap_stream *)s;
	struct wrap_sub *sub = (struct wrap_sub *)s->subtransport;

	if (sub->cur == w)
		sub->cur = NULL;
	w->inner->free(w->inner);
	free(w);
}

static int
wrap_action(git_smart_subtransport_stream **out, git_smart_subtransport *t, const char *url,
	    git_smart_service_t action)
{
	struct wrap_sub *sub = (struct wrap_sub *)t;
	git_smart_subtransport_stream *inner;
	struct wrap_stream *w;
	int r;

	if ((r = sub->inner->action(&inner, sub->inner, url, action)) < 0)
		return r;
	if (sub->cur && sub->cur->inner == inner) {
		*out = &sub->cur->parent;
		return 0;
	}
	if (!(w = calloc(1, sizeof(*w))))
		return -1;
	w->inner = inner;
	sub->cur = w;
	w->parent.subtransport = t;
	w->parent.read = wrap_read;
	w->parent.write = wrap_write;
	w->parent.free = wrap_stream_free;
	w->listing = action == GIT_SERVICE_UPLOADPACK_LS || action == GIT_SERVICE_RECEIVEPACK_LS;
	*out = &w->parent;
	return 0;
}

static int
wrap_close(git_smart_subtransport *t)
{
	struct wrap_sub *sub = (struct wrap_sub *)t;

	return sub->inner->close(sub->inner);
}

static void
wrap_free(git_smart_subtransport *t)
{
	struct wrap_sub *sub = (struct wrap_sub *)t;

	sub->inner->free(sub->inner);
	free(sub);
}

static int
wrap_new(git_smart_subtransport **out, git_transport *owner, void *param)
{
	git_smart_subtransport_cb inner_cb = (git_smart_subtransport_cb)param;
	struct wrap_sub *sub = calloc(1, sizeof(*sub));

	if (!sub || inner_cb(&sub->inner, owner, NULL) < 0) {
		free(sub);
		return -1;
	}
	sub->parent.action = wrap_action;
	sub->parent.close = wrap_close;
	sub->parent.free = wrap_free;
	*out = &sub->parent;
	return 0;
}

static git_smart_subtransport_definition defs[] = {
	{ wrap_new, 0, (void *)git_smart_subtransport_git },
	{ wrap_new, 1, (void *)git_smart_subtransport_http },
	{ wrap_new, 0, (void *)git_smart_subtransport_ssh },
};

static int
smart(git_transport **out, git_remote *owner, void *param)
{
	return git_transport_smart(out, owner, param);
}

int
hm_gitprobe_install(void)
{
	/* libgit2 takes the scheme's name, not "name://" as its header says. */
	static const struct {
		const char *prefix;
		int def;
	} schemes[] = {
		{ "git", 0 }, { "http", 1 },    { "https", 1 },
		{ "ssh", 2 }, { "ssh+git", 2 }, { "git+ssh", 2 },
	};

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		git_transport_unregister(schemes[i].prefix);
		if (git_transport_register(schemes[i].prefix, smart, &defs[schemes[i].def]) < 0)
			return -1;
	}
	return 0;
}

int
hm_gitprobe_bare(void)
{
	return bare;
}
