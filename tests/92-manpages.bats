#!/usr/bin/env bats
# Every binary has a man page; pages are clean roff; flags in --help and in
# the page agree.

load helper

MAN="$BATS_TEST_DIRNAME/../man"

# Long flags a text mentions (roff escapes removed).
flags() { sed 's/\\-/-/g; s/\\f[BIRP]//g' | grep -oE -- '--[a-z][a-z-]*[a-z]' | sort -u; }

# The OPTIONS section of a page (up to the next .SH).
options_section() { awk '/^\.SH OPTIONS/{on=1; next} /^\.SH/{on=0} on' "$1"; }

tools() {
	for b in "$(dirname "$(command -v heimdal)")"/heimdal-*; do
		basename "$b"
	done
}

@test "every page is clean under groff -ww" {
	for page in "$MAN"/*.[17]; do
		out=$(groff -man -ww -z "$page" 2>&1)
		[ -z "$out" ] || fail "$page: $out"
	done
}

@test "every binary has a man page with the required sections" {
	for t in heimdal $(tools); do
		page="$MAN/$t.1"
		[ -f "$page" ] || fail "no man page for $t"
		for s in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" EXAMPLES "SEE ALSO"; do
			grep -q "^\.SH \"\{0,1\}$s" "$page" || fail "$page: no $s section"
		done
	done
	[ -f "$MAN/heimdal.7" ]
}

@test "every flag in a tool's --help is documented in its page, and every documented option exists" {
	for t in $(tools); do
		page="$MAN/$t.1"
		help=$("$t" --help | flags)
		documented=$(flags <"$page")
		for f in $help; do
			grep -qx -- "$f" <<<"$documented" || fail "$t: $f in --help, not in $page"
		done
		for f in $(options_section "$page" | flags); do
			grep -qx -- "$f" <<<"$help" || fail "$t: $f documented in OPTIONS, not in --help"
		done
	done
}

@test "every porcelain flag in heimdal's usage texts is documented in heimdal.1" {
	documented=$(flags <"$MAN/heimdal.1")
	for f in $( (heimdal --help; heimdal state --help) | flags); do
		grep -qx -- "$f" <<<"$documented" || fail "$f not in heimdal.1"
	done
}

@test "every EXIT STATUS section lists the codes 0 to 4" {
	for page in "$MAN"/*.1; do
		sect=$(awk '/^\.SH "?EXIT STATUS/{on=1; next} /^\.SH/{on=0} on' "$page")
		for code in 0 1 2 3 4; do
			grep -q "^\.B $code\$" <<<"$sect" || fail "$page: exit code $code not listed"
		done
	done
}

@test "every page is lint-clean under mandoc -Tlint (no output at all)" {
	command -v mandoc >/dev/null || fail "mandoc is missing: run share/install-deps"
	run mandoc -Tlint "$MAN"/*.1 "$MAN"/*.7
	[ -z "$output" ] || fail "$output"
}

@test "every page's .TH carries the Makefile's version and date, and make install-man writes them" {
	local top="$BATS_TEST_DIRNAME/.." version date th
	version=$(sed -n 's/^VERSION = //p' "$top/Makefile")
	date=$(sed -n 's/^VERSION_DATE = //p' "$top/Makefile")
	[ -n "$version" ] && [ -n "$date" ] || fail "no VERSION or VERSION_DATE in the Makefile"
	for page in "$MAN"/*.[17]; do
		th=$(grep -m1 '^\.TH ' "$page")
		[[ "$th" =~ ^\.TH\ [A-Z-]+\ [17]\ $date\ \"heimdal\ $version\"\ \"heimdal\ manual\"$ ]] ||
			fail "$page: $th"
	done
	# Installed pages get them from the Makefile, whatever the source says.
	make -s -C "$top" PREFIX="$BATS_TEST_TMPDIR/p" VERSION=9.8.7 VERSION_DATE=2030-01-02 install-man
	for page in "$MAN"/*.[17]; do
		n=${page##*/}
		th=$(grep -m1 '^\.TH ' "$BATS_TEST_TMPDIR/p/share/man/man${n##*.}/$n")
		[[ "$th" == *' 2030-01-02 "heimdal 9.8.7" "heimdal manual"' ]] || fail "$n installed: $th"
		diff <(sed 1d "$page") <(sed 1d "$BATS_TEST_TMPDIR/p/share/man/man${n##*.}/$n") ||
			fail "$n: install-man changed more than .TH"
	done
}

@test "heimdal.1 renders every command of heimdal --help as its own tagged paragraph" {
	local text
	command -v mandoc >/dev/null || fail "mandoc is missing"
	text=$(MANWIDTH=200 mandoc -Tascii "$MAN/heimdal.1" | col -b)
	for c in $(heimdal --help | awk '/^Commands:/{on=1; next} /^$/{on=0} on { print $1 }'); do
		[ "$c" = help ] || [ "$c" = version ] && continue
		grep -qE "^ {7}heimdal $c( |\$)" <<<"$text" || fail "heimdal $c is not a tag in heimdal.1"
	done
}
