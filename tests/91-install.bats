#!/usr/bin/env bats
# make install / uninstall into a temporary prefix, and the installed tools run.

load helper

TOP="$BATS_TEST_DIRNAME/.."

@test "make install PREFIX=...: heimdal in BINDIR, plumbing in LIBEXECDIR/heimdal and by name, man pages" {
	prefix="$BATS_TEST_TMPDIR/prefix"
	make -s -C "$TOP" BUILD="$BATS_TEST_TMPDIR/build" PREFIX="$prefix" install >/dev/null
	[ -x "$prefix/bin/heimdal" ]
	[ -x "$prefix/libexec/heimdal/heimdal-migrate" ]
	[ -L "$prefix/bin/heimdal-migrate" ]
	[ -f "$prefix/share/man/man1/heimdal.1" ]
	[ -f "$prefix/share/man/man1/heimdal-migrate.1" ]
	[ -f "$prefix/share/man/man7/heimdal.7" ]
	[ -f "$prefix/share/bash-completion/completions/heimdal" ]
	[ -f "$prefix/share/zsh/site-functions/_heimdal" ]
	[ -f "$prefix/share/heimdal/completions/heimdal.bash" ]
	[ -f "$prefix/share/heimdal/schema/lock.schema.json" ]
	# Run from the prefix alone: a PATH without the build tree.
	run env PATH="$prefix/bin:/usr/bin:/bin" heimdal --exec-path
	expect_status 0
	[ "$output" = "$prefix/bin" ]
	install_state v1.json
	run --separate-stderr env PATH="$prefix/bin:/usr/bin:/bin" heimdal state version
	expect_status 0
	[[ "$output" == "State Version: 2"* ]]
	run env PATH="$prefix/bin:/usr/bin:/bin" heimdal-migrate --help
	expect_status 0
	# With only the libexec copy (no BINDIR links), the compiled-in directory is used.
	rm "$prefix/bin/heimdal-migrate"
	install_state v1.json
	run --separate-stderr env PATH="/usr/bin:/bin" "$prefix/bin/heimdal" state version
	expect_status 0

	make -s -C "$TOP" BUILD="$BATS_TEST_TMPDIR/build" PREFIX="$prefix" uninstall >/dev/null
	[ -z "$(find "$prefix" -type f -o -type l)" ] || fail "left behind: $(find "$prefix" -type f -o -type l)"
}

@test "make install DESTDIR=... stages under DESTDIR with links to the final paths" {
	dest="$BATS_TEST_TMPDIR/stage"
	make -s -C "$TOP" BUILD="$BATS_TEST_TMPDIR/build" PREFIX=/usr DESTDIR="$dest" install >/dev/null
	[ -x "$dest/usr/bin/heimdal" ]
	[ -x "$dest/usr/libexec/heimdal/heimdal-migrate" ]
	[ "$(readlink "$dest/usr/bin/heimdal-migrate")" = /usr/libexec/heimdal/heimdal-migrate ]
	make -s -C "$TOP" BUILD="$BATS_TEST_TMPDIR/build" PREFIX=/usr DESTDIR="$dest" uninstall >/dev/null
	[ -z "$(find "$dest" -type f -o -type l)" ]
}
