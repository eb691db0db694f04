#!/usr/bin/env bats
# Dotfiles travelling between real machines (issue 12): each machine is a
# HOME/HEIMDAL_HOME pair with its own git configuration, all sharing one bare
# remote (one story over git daemon).  The remote is seeded with dotfiles; the
# machines init and sync, then edit files that already exist in $HOME and use
# heimdal the way a user does.

load helper
load helper-git

BASHRC='# bashrc from the seed
export EDITOR=vi
alias ll="ls -l"
alias la="ls -a"
export PAGER=less'
VIMRC='set number
syntax on'
INPUTRC='set bell-style none
set completion-ignore-case on'

setup() {
	setup_scratch
	# Real machines have real clocks.
	unset HEIMDAL_NOW
	REMOTE=$(bare_remote)
	seed_remote
}

# seed_remote: the first dotfiles commit on $REMOTE, made with plain git.
seed_remote() {
	local w="$BATS_TEST_TMPDIR/seed"
	git clone -q "$REMOTE" "$w" 2>/dev/null
	printf '%s\n' "$BASHRC" >"$w/.bashrc"
	printf '%s\n' "$VIMRC" >"$w/.vimrc"
	printf '%s\n' "$INPUTRC" >"$w/.inputrc"
	git -C "$w" add .bashrc .vimrc .inputrc
	git -C "$w" commit -q -m "dotfiles"
	git -C "$w" push -q origin HEAD:main
}

# up NAME [URL [PROFILE]]: a machine with its own git identity that inits
# against URL ($REMOTE) and syncs; its $HOME then holds the dotfiles.
up() {
	local m=$1 url=${2:-$REMOTE} profile=${3:-p}
	git_machine "$m"
	as "$m" git config --global user.name "User on $m"
	as "$m" git config --global user.email "$m@example.invalid"
	run --separate-stderr as "$m" heimdal init --profile "$profile" --repo "$url"
	expect_status 0 || return 1
	run --separate-stderr as "$m" heimdal sync
	expect_status 0 || return 1
	expect_file "$(mhome "$m")/.bashrc" "$BASHRC"
	expect_file "$(mhome "$m")/.vimrc" "$VIMRC"
}

# hm NAME ARGS...: run heimdal ARGS on that machine (status, output, stderr set).
hm() {
	local m=$1
	shift
	run --separate-stderr as "$m" heimdal "$@"
}

# ok NAME ARGS...: heimdal ARGS on that machine must exit 0.
ok() {
	hm "$@"
	[ "$status" -eq 0 ] || fail "heimdal ${*:2} on $1: expected status 0, got $status"
}

# expect_file FILE TEXT: FILE holds exactly TEXT and a final newline.
expect_file() {
	[ -f "$1" ] || fail "$1 is missing"
	printf '%s\n' "$2" | cmp -s - "$1" ||
		fail "$1 differs:" "--- expected" "$2" "--- got" "$(cat "$1")"
}

# remote_file PATH: PATH at the remote's tip.
remote_file() {
	git --git-dir="$REMOTE" show "main:$1"
}

# same_as_remote NAME PATH...: those files in that machine's $HOME equal the remote tip's.
same_as_remote() {
	local m=$1 p
	shift
	for p in "$@"; do
		remote_file "$p" | cmp -s - "$(mhome "$m")/$p" ||
			fail "$m's ~/$p differs from the remote's:" "$(remote_file "$p")" "---" "$(cat "$(mhome "$m")/$p")"
	done
}

# no_drift NAME: check-drift exits 0 on that machine, with nothing modified or missing.
no_drift() {
	hm "$1" state check-drift
	[ "$status" -eq 0 ] || fail "check-drift on $1: expected 0, got $status"
	hm "$1" state check-drift --json
	[ "$status" -eq 0 ] || fail "check-drift --json on $1: expected 0, got $status"
	expect_json '.modified == [] and .missing == []'
}

# edit NAME PATH SED: edit a file in that machine's $HOME in place.
edit() {
	sed -i "$3" "$(mhome "$1")/$2"
}

# append NAME PATH LINE
append() {
	printf '%s\n' "$3" >>"$(mhome "$1")/$2"
}

# The seed's .bashrc with its first line, or its last line, replaced.
first_line() {
	printf '%s\n' "$BASHRC" | sed "1s/.*/$1/"
}
last_line() {
	printf '%s\n' "$BASHRC" | sed "\$s/.*/$1/"
}
both_lines() {
	printf '%s\n' "$BASHRC" | sed -e "1s/.*/$1/" -e "\$s/.*/$2/"
}

# story_a URL: an edit on A reaches B by sync alone, and back.
story_a() {
	up A "$1"
	up B "$1"
	ok A sync
	no_drift A
	no_drift B
	append A .bashrc 'alias gs="git status"'
	ok A commit -m x
	ok A sync
	ok B sync
	expect_file "$(mhome B)/.bashrc" "$BASHRC
alias gs=\"git status\""
	no_drift B
	no_drift A
	jq -e '.checksums[".bashrc"] and .active_profile == "p"' "$(mhome B)/.heimdal/state.json"
	# The other way round.
	edit B .bashrc 's/^export EDITOR=vi$/export EDITOR=nvim/'
	ok B commit -m y
	ok B sync
	ok A sync
	expected=$(printf '%s\n' "$BASHRC" 'alias gs="git status"' | sed 's/^export EDITOR=vi$/export EDITOR=nvim/')
	expect_file "$(mhome A)/.bashrc" "$expected"
	expect_file "$(mhome B)/.bashrc" "$expected"
	no_drift A
	no_drift B
}

@test "a: an edit on A reaches B by sync alone, and B's edit reaches A" {
	story_a "$REMOTE"
	same_as_remote A .bashrc .vimrc
}

@test "b: A and B edit different files; both machines end with both edits" {
	up A
	up B
	ok A sync
	append A .bashrc 'alias gs="git status"'
	ok A commit -m "bashrc on A"
	append B .vimrc 'set ruler'
	ok B commit -m "vimrc on B"
	ok A sync
	ok B sync
	ok A sync
	for m in A B; do
		expect_file "$(mhome $m)/.bashrc" "$BASHRC
alias gs=\"git status\""
		expect_file "$(mhome $m)/.vimrc" "$VIMRC
set ruler"
		no_drift $m
		same_as_remote $m .bashrc .vimrc .inputrc
	done
}

@test "c: one file edited on both machines in different lines merges" {
	up A
	up B
	ok A sync
	edit A .bashrc '1s/.*/# bashrc, edited on A/'
	ok A commit -m "first line on A"
	edit B .bashrc '$s/.*/export PAGER=most/'
	ok B commit -m "last line on B"
	ok A sync
	ok B sync
	ok A sync
	expected=$(both_lines '# bashrc, edited on A' 'export PAGER=most')
	for m in A B; do
		expect_file "$(mhome $m)/.bashrc" "$expected"
		no_drift $m
		same_as_remote $m .bashrc
	done
}

@test "d: an uncommitted edit on B merges three-way with A's committed edit of the same file" {
	up A
	up B
	ok A sync
	edit B .bashrc '$s/.*/export PAGER=most/'
	edit A .bashrc '1s/.*/# bashrc, edited on A/'
	ok A commit -m "first line on A"
	ok A sync
	ok B sync
	expected=$(both_lines '# bashrc, edited on A' 'export PAGER=most')
	expect_file "$(mhome B)/.bashrc" "$expected"
	# B's own edit is not committed yet: drift, on that file only.
	hm B state check-drift
	expect_status 1
	[[ "$output" == *.bashrc* ]] || fail "check-drift does not list .bashrc"
	hm B state check-drift --json
	expect_status 1
	expect_json '[.modified[].path] == [".bashrc"] and .missing == []'
	ok B commit -m m
	ok B sync
	ok A sync
	for m in A B; do
		expect_file "$(mhome $m)/.bashrc" "$expected"
		no_drift $m
		same_as_remote $m .bashrc
	done
}

# overlap: B changes line 1 in $HOME (uncommitted), A commits and syncs
# another change of line 1; B's sync stops on the conflict.
overlap() {
	up A
	up B
	ok A sync
	edit B .bashrc '1s/.*/# bashrc of B/'
	cp "$(mhome B)/.bashrc" "$BATS_TEST_TMPDIR/bashrc-of-B"
	edit A .bashrc '1s/.*/# bashrc of A/'
	ok A commit -m "line 1 on A"
	ok A sync
	hm B sync
	expect_status 1
	cmp -s "$BATS_TEST_TMPDIR/bashrc-of-B" "$(mhome B)/.bashrc" || fail "B's ~/.bashrc was changed"
	MERGE_FILE="$(mhome B)/.bashrc.heimdal-merge"
	[ -f "$MERGE_FILE" ] || fail "no ~/.bashrc.heimdal-merge"
	cd "$(mhome B)"
}

@test "e: overlapping edits stop safely: HOME untouched, the merge with markers beside it" {
	overlap
	[[ "$output" == *.bashrc* ]] || fail "stdout does not name .bashrc"
	grep -q '^<<<<<<<' "$MERGE_FILE" || fail "no <<<<<<< in $(cat "$MERGE_FILE")"
	grep -qx '=======' "$MERGE_FILE" || fail "no ======= in $(cat "$MERGE_FILE")"
	grep -q '^>>>>>>>' "$MERGE_FILE" || fail "no >>>>>>> in $(cat "$MERGE_FILE")"
	grep -qx '# bashrc of A' "$MERGE_FILE" || fail "A's line is not in the merge"
	grep -qx '# bashrc of B' "$MERGE_FILE" || fail "B's line is not in the merge"
	grep -qx 'export PAGER=less' "$MERGE_FILE" || fail "the unchanged lines are not in the merge"
}

@test "e: overlapping edits, settled with resolve --theirs" {
	overlap
	ok B resolve --theirs .bashrc
	expect_file "$(mhome B)/.bashrc" "$(first_line '# bashrc of A')"
	# B's version is kept as a backup.
	found=$(find "$(mhome B)/.heimdal/backups" -type f -exec cmp -s "$BATS_TEST_TMPDIR/bashrc-of-B" {} \; -print 2>/dev/null)
	[ -n "$found" ] || fail "no backup of B's .bashrc under \$HEIMDAL_HOME/backups/"
	no_drift B
	ok B sync
	ok A sync
	expect_file "$(mhome A)/.bashrc" "$(first_line '# bashrc of A')"
	no_drift A
}

@test "e: overlapping edits, settled with resolve --ours; B's version reaches A" {
	overlap
	ok B resolve --ours .bashrc
	expect_file "$(mhome B)/.bashrc" "$(first_line '# bashrc of B')"
	ok B commit -m k
	ok B sync
	ok A sync
	expect_file "$(mhome A)/.bashrc" "$(first_line '# bashrc of B')"
	expect_file "$(mhome B)/.bashrc" "$(first_line '# bashrc of B')"
	same_as_remote A .bashrc
	no_drift A
	no_drift B
}

@test "e: overlapping edits, settled with resolve --merged after editing the merge file" {
	overlap
	resolution=$(first_line '# bashrc of A and B')
	printf '%s\n' "$resolution" >"$MERGE_FILE"
	ok B resolve --merged .bashrc
	expect_file "$(mhome B)/.bashrc" "$resolution"
	[ ! -e "$MERGE_FILE" ] || fail "the .heimdal-merge file is still there"
	ok B commit -m merged
	ok B sync
	ok A sync
	expect_file "$(mhome A)/.bashrc" "$resolution"
	no_drift A
	no_drift B
}

@test "e: resolve --merged while the conflict markers remain exits 1 and changes nothing" {
	overlap
	cp "$MERGE_FILE" "$BATS_TEST_TMPDIR/merge-before"
	cp "$(mhome B)/.heimdal/state.json" "$BATS_TEST_TMPDIR/state-before"
	head=$(as B git -C "$(mhome B)/.dotfiles" rev-parse HEAD)
	hm B resolve --merged .bashrc
	expect_status 1
	[[ "$stderr$output" == *.bashrc* ]] || fail "the message does not name .bashrc"
	cmp -s "$BATS_TEST_TMPDIR/bashrc-of-B" "$(mhome B)/.bashrc" || fail "~/.bashrc changed"
	cmp -s "$BATS_TEST_TMPDIR/merge-before" "$MERGE_FILE" || fail "the .heimdal-merge file changed"
	cmp -s "$BATS_TEST_TMPDIR/state-before" "$(mhome B)/.heimdal/state.json" || fail "the state changed"
	[ "$(as B git -C "$(mhome B)/.dotfiles" rev-parse HEAD)" = "$head" ] || fail "HEAD moved"
}

@test "f: heimdal commit never reverts an upstream change it has not deployed" {
	up A
	up B
	ok A sync
	append A .bashrc 'alias gs="git status"'
	ok A commit -m "bashrc on A"
	ok A sync
	ok B pull
	append B .vimrc 'set ruler'
	ok B commit -m v
	ok B sync
	with_a="$BASHRC
alias gs=\"git status\""
	[ "$(remote_file .bashrc)" = "$with_a" ] || fail "the remote's .bashrc lost A's edit:" "$(remote_file .bashrc)"
	[ "$(remote_file .vimrc)" = "$VIMRC
set ruler" ] || fail "the remote's .vimrc lacks B's edit"
	ok A sync
	for m in A B; do
		expect_file "$(mhome $m)/.bashrc" "$with_a"
		expect_file "$(mhome $m)/.vimrc" "$VIMRC
set ruler"
		no_drift $m
	done
}

@test "g: commit refuses a file changed both upstream (pulled, not deployed) and here" {
	up A
	up B
	ok A sync
	edit A .bashrc '1s/.*/# bashrc of A/'
	ok A commit -m "line 1 on A"
	ok A sync
	ok B pull
	head=$(as B git -C "$(mhome B)/.dotfiles" rev-parse HEAD)
	edit B .bashrc '1s/.*/# bashrc of B/'
	hm B commit -m x
	expect_status 1
	[[ "$stderr" == *.bashrc* ]] || fail "stderr does not name .bashrc"
	[ "$(as B git -C "$(mhome B)/.dotfiles" rev-parse HEAD)" = "$head" ] || fail "B committed"
	expect_file "$(mhome B)/.dotfiles/.bashrc" "$(first_line '# bashrc of A')"
	# The user's edit stays where it was.
	expect_file "$(mhome B)/.bashrc" "$(first_line '# bashrc of B')"
	[ "$(remote_file .bashrc)" = "$(first_line '# bashrc of A')" ] || fail "the remote changed"
}

@test "h: pull, then sync deploys what the pull brought" {
	up A
	up B
	ok A sync
	append A .bashrc 'alias gs="git status"'
	ok A commit -m "bashrc on A"
	ok A sync
	ok B pull
	ok B sync
	expect_file "$(mhome B)/.bashrc" "$BASHRC
alias gs=\"git status\""
	no_drift B
}

@test "i: a git conflict resolved by hand in ~/.dotfiles is deployed by the next sync" {
	up A
	up B
	ok A sync
	edit A .bashrc 's/^export EDITOR=vi$/export EDITOR=emacs/'
	ok A commit -m "editor on A"
	edit B .bashrc 's/^export EDITOR=vi$/export EDITOR=nano/'
	ok B commit -m "editor on B"
	ok A sync
	hm B sync
	expect_status 1
	[[ "$output" == *"Merge conflicts detected in:"* ]] || fail "no 'Merge conflicts detected in:'"
	resolution=$(printf '%s\n' "$BASHRC" | sed 's/^export EDITOR=vi$/export EDITOR=vim/')
	printf '%s\n' "$resolution" >"$(mhome B)/.dotfiles/.bashrc"
	as B git -C "$(mhome B)/.dotfiles" add .bashrc
	ok B sync
	expect_file "$(mhome B)/.bashrc" "$resolution"
	[ "$(remote_file .bashrc)" = "$resolution" ] || fail "the remote lacks the resolution"
	ok A sync
	expect_file "$(mhome A)/.bashrc" "$resolution"
	no_drift A
	no_drift B
}

@test "j: a file tracked with git add is recorded, and its later edits travel" {
	up A
	up B
	ok A sync
	printf '%s\n' 'set -g mouse on' >"$(mhome A)/.tmux.conf"
	cp "$(mhome A)/.tmux.conf" "$(mhome A)/.dotfiles/.tmux.conf"
	as A git -C "$(mhome A)/.dotfiles" add .tmux.conf
	ok A commit -m t
	jq -e '.checksums[".tmux.conf"]' "$(mhome A)/.heimdal/state.json"
	append A .tmux.conf 'set -g history-limit 10000'
	ok A commit -m "tmux on A"
	ok A sync
	ok B sync
	expect_file "$(mhome B)/.tmux.conf" 'set -g mouse on
set -g history-limit 10000'
	same_as_remote A .tmux.conf
	no_drift A
	no_drift B
}

@test "k: chmod +x in HOME is committed and deployed" {
	up A
	up B
	ok A sync
	chmod +x "$(mhome A)/.bashrc"
	ok A commit -m mode
	ok A sync
	git --git-dir="$REMOTE" ls-tree main .bashrc | grep -q '^100755 ' ||
		fail "the remote's .bashrc is not 100755: $(git --git-dir="$REMOTE" ls-tree main .bashrc)"
	ok B sync
	[ -x "$(mhome B)/.bashrc" ] || fail "B's ~/.bashrc is not executable"
	expect_file "$(mhome B)/.bashrc" "$BASHRC"
	no_drift A
	no_drift B
}

@test "l: .heimdalignore stops tracking a file without deleting it anywhere" {
	up A
	up B
	ok A sync
	printf '%s\n' .vimrc >>"$(mhome A)/.dotfiles/.heimdalignore"
	as A git -C "$(mhome A)/.dotfiles" add .heimdalignore
	ok A commit -m ignore
	ok A sync
	ok B sync
	expect_file "$(mhome B)/.vimrc" "$VIMRC"
	expect_file "$(mhome A)/.vimrc" "$VIMRC"
	expect_file "$(mhome B)/.bashrc" "$BASHRC"
	git --git-dir="$REMOTE" show main:.heimdalignore | grep -qx .vimrc
	no_drift A
	no_drift B
}

@test "m: state resolve keeps this machine's profile, path and id, with a new serial" {
	up A
	up B "$REMOTE" q
	ok A sync
	ok B sync
	# Both commit while the remote is out of reach.
	mv "$REMOTE" "$REMOTE.away"
	append A .bashrc 'alias gs="git status"'
	ok A commit -m "bashrc on A"
	append B .vimrc 'set ruler'
	ok B commit -m "vimrc on B"
	mv "$REMOTE.away" "$REMOTE"
	ok A sync
	as B git -C "$(mhome B)/.dotfiles" fetch -q origin
	state="$(mhome B)/.heimdal/state.json"
	cp "$state" "$BATS_TEST_TMPDIR/b-state"
	local_serial=$(jq .lineage.serial "$state")
	remote_serial=$(remote_file .heimdal/state.json | jq .lineage.serial)
	id=$(jq -r .machine.id "$state")
	[ "$(jq -r .machine.id <(remote_file .heimdal/state.json))" != "$id" ] || fail "A did not publish the remote state"
	for how in --use-remote --use-local --merge; do
		cp "$BATS_TEST_TMPDIR/b-state" "$state"
		ok B state resolve "$how"
		jq -e --arg id "$id" --arg path "$(mhome B)/.dotfiles" \
			--argjson l "$local_serial" --argjson r "$remote_serial" \
			'.active_profile == "q" and .dotfiles_path == $path and .machine.id == $id
			 and .lineage.serial > $l and .lineage.serial > $r' "$state" ||
			fail "resolve $how:" "$(jq -c '{active_profile, dotfiles_path, id: .machine.id, serial: .lineage.serial}' "$state")" \
				"local serial $local_serial, remote serial $remote_serial"
	done
}

@test "n: a remote that refuses is an error (exit 3); a closed port is offline (exit 0)" {
	up A
	append A .bashrc 'alias gs="git status"'
	ok A commit -m "bashrc on A"
	rm -rf "$REMOTE"
	hm A sync
	expect_status 3
	[[ "$stderr" == *error* ]] || fail "no error on stderr"
	[[ "$output$stderr" != *"Cannot reach remote repository"* ]] || fail "called offline"
	port=$(free_port)
	as A git -C "$(mhome A)/.dotfiles" remote set-url origin "git://127.0.0.1:$port/origin.git"
	hm A sync
	expect_status 0
	[[ "$output$stderr" == *"Cannot reach remote repository"* ]] || fail "no offline warning"
}

@test "o: three machines edit different files; two rounds of sync make them identical" {
	up A
	up B
	up C
	append A .bashrc 'alias gs="git status"'
	ok A commit -m "bashrc on A"
	append B .vimrc 'set ruler'
	ok B commit -m "vimrc on B"
	edit C .inputrc 's/^set bell-style none$/set bell-style visible/'
	ok C commit -m "inputrc on C"
	for round in 1 2; do
		for m in A B C; do
			ok $m sync
		done
	done
	for m in A B C; do
		expect_file "$(mhome $m)/.bashrc" "$BASHRC
alias gs=\"git status\""
		expect_file "$(mhome $m)/.vimrc" "$VIMRC
set ruler"
		expect_file "$(mhome $m)/.inputrc" "$(printf '%s\n' "$INPUTRC" | sed 's/none$/visible/')"
		same_as_remote $m .bashrc .vimrc .inputrc
		no_drift $m
		[ "$(jq '.lineage.machines | length' "$(mhome $m)/.heimdal/state.json")" = 3 ] ||
			fail "$m: $(jq -c .lineage.machines "$(mhome $m)/.heimdal/state.json")"
	done
}

@test "p: over git daemon, an edit on A reaches B by sync alone, and back" {
	git_daemon_start "$(dirname "$REMOTE")"
	story_a "$GIT_DAEMON_URL/$(basename "$REMOTE")"
	same_as_remote A .bashrc .vimrc
	same_as_remote B .bashrc .vimrc
}
