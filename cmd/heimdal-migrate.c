/*
 * heimdal-migrate - migrate a V1 state to V2.
 *
 * Reads a state (stdin or FILE), writes the V2 state on stdout.  A V2 state
 * passes through unchanged; a newer version is refused.  Nothing is written
 * on stdout unless the whole migration succeeded.
 */
#include "hm_error.h"
#include "hm_opt.h"
#include "hm_json.h"
#include "hm_machine.h"
#include "hm_state.h"
#include "hm_time.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The usage line under an option error. */
#define USAGE_LINE "heimdal-migrate [--machine-id ID] [--lineage-id ID] [-c] [FILE]"

static _Noreturn void
usage(FILE *f, int code)
{
	fprintf(f, "usage: heimdal-migrate [-c] [FILE]\n"
		   "\n"
		   "Migrate a V1 heimdal state (FILE or stdin) to V2 and print it.\n"
		   "A V2 state is printed unchanged; a newer one is refused.\n"
		   "\n"
		   "  -c, --compact        print compact JSON (one line)\n"
		   "      --machine-id ID  record ID as the machine instead of this machine's id\n"
		   "      --lineage-id ID  use ID as the new lineage id instead of a random one\n"
		   "  -h, --help           show this help\n");
	exit(code);
}

/* Copy the optional V1 timestamp key into the V2 document when present. */
static jv
carry(jv v2, jv v1, const char *key)
{
	jv v = jv_object_get(jv_copy(v1), jv_string(key));

	if (jv_is_valid(v))
		return jv_object_set(v2, jv_string(key), v);
	jv_free(v);
	return v2;
}

static jv
migrate(jv v1, const char *machine_id, const char *lineage_id)
{
	char uuid[37], now[32];
	jv machine, lineage, v2 = jv_object();

	machine = hm_machine_info();
	if (!jv_is_valid(machine)) {
		jv_free(v1);
		jv_free(v2);
		return machine;
	}
	if (machine_id)
		machine = jv_object_set(machine, jv_string("id"), jv_string(machine_id));
	if (!lineage_id) {
		if (hm_uuid_v4(uuid) < 0) {
			jv_free(v1);
			jv_free(v2);
			jv_free(machine);
			return jv_invalid_with_msg(jv_string("cannot generate a lineage id"));
		}
	}
	hm_time_now_rfc3339(now);
	v2 = jv_object_set(v2, jv_string("version"), jv_number(HM_STATE_VERSION));
	v2 = jv_object_set(v2, jv_string("active_profile"),
			   jv_object_get(jv_copy(v1), jv_string("active_profile")));
	v2 = jv_object_set(v2, jv_string("dotfiles_path"),
			   jv_object_get(jv_copy(v1), jv_string("dotfiles_path")));
	v2 = jv_object_set(v2, jv_string("repo_url"),
			   jv_object_get(jv_copy(v1), jv_string("repo_url")));
	v2 = carry(v2, v1, "last_sync");
	v2 = carry(v2, v1, "last_apply");
	lineage = jv_object();
	lineage = jv_object_set(lineage, jv_string("id"),
				lineage_id ? jv_string(lineage_id)
					   : jv_string_fmt("lineage-%s", uuid));
	lineage = jv_object_set(lineage, jv_string("serial"), jv_number(1));
	lineage = jv_object_set(lineage, jv_string("parent_serial"), jv_number(0));
	lineage = jv_object_set(lineage, jv_string("git_commit"), jv_null());
	lineage = jv_object_set(
		lineage, jv_string("machines"),
		jv_array_append(jv_array(), jv_object_get(jv_copy(machine), jv_string("id"))));
	v2 = jv_object_set(v2, jv_string("machine"), machine);
	v2 = jv_object_set(v2, jv_string("heimdal_version"), jv_string(HM_VERSION));
	v2 = jv_object_set(v2, jv_string("lineage"), lineage);
	v2 = jv_object_set(v2, jv_string("history"), jv_array());
	v2 = jv_object_set(v2, jv_string("checksums"), jv_object());
	jv_free(v1);
	return hm_state_canonical(v2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "compact", no_argument, NULL, 'c' },
		{ "machine-id", required_argument, NULL, 'm' },
		{ "lineage-id", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = "-", *machine_id = NULL, *lineage_id = NULL;
	int c, compact = 0, version, ioerr;
	char *err = NULL;
	jv doc;

	hm_error_init(argv[0]);
	while ((c = hm_opt_next(argc, argv, "ch", opts, USAGE_LINE)) != -1) {
		switch (c) {
		case 'c':
			compact = 1;
			break;
		case 'm':
			machine_id = optarg;
			break;
		case 'l':
			lineage_id = optarg;
			break;
		case 'h':
			usage(stdout, 0);
		}
	}
	if (argc - optind > 1)
		usage(stderr, HM_EXIT_USAGE);
	if (argc - optind == 1)
		path = argv[optind];
	if ((machine_id && !*machine_id) || (lineage_id && !*lineage_id))
		hm_die(HM_EXIT_USAGE, "%s: must not be empty",
		       machine_id && !*machine_id ? "--machine-id" : "--lineage-id");

	doc = hm_json_read_file(path, &ioerr);
	if (!jv_is_valid(doc))
		hm_die_jv(ioerr ? HM_EXIT_ENV : HM_EXIT_USAGE, doc);
	version = hm_state_version_of(doc, &err);
	if (version < 0)
		hm_die(HM_EXIT_USAGE, "%s: %s", hm_json_source_name(path), err);
	if (version > HM_STATE_VERSION)
		hm_die(HM_EXIT_USAGE, "%s: " HM_STATE_NEWER_FMT, hm_json_source_name(path), version,
		       HM_STATE_VERSION);
	if (version == HM_STATE_VERSION) {
		if (hm_state_validate(doc, &err) < 0)
			hm_die(HM_EXIT_USAGE, "%s: %s", hm_json_source_name(path), err);
		hm_debug("%s: already version %d, unchanged", hm_json_source_name(path), version);
	} else {
		if (hm_state_validate_v1(doc, &err) < 0)
			hm_die(HM_EXIT_USAGE, "%s: %s", hm_json_source_name(path), err);
		doc = migrate(doc, machine_id, lineage_id);
		if (!jv_is_valid(doc))
			hm_die_jv(HM_EXIT_ENV, doc);
		/* The migrated state must itself be valid before anything is printed. */
		if (hm_state_validate(doc, &err) < 0)
			hm_die(HM_EXIT_USAGE, "%s: migrated state is invalid: %s",
			       hm_json_source_name(path), err);
	}
	if (hm_json_write(stdout, doc, compact ? HM_JSON_COMPACT : HM_JSON_PRETTY) < 0 ||
	    fflush(stdout) != 0)
		hm_die_errno(HM_EXIT_ENV, "stdout");
	return 0;
}
