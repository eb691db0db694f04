# helper-git.bash - git servers and machines for the multi-machine suites.
#
# Load after helper: `load helper; load helper-git`.  Servers listen on
# 127.0.0.1 only, on a free port, and are stopped by git_servers_stop (called
# from teardown).

GIT_SERVER_PIDS=()

teardown() {
	git_servers_stop
}

git_servers_stop() {
	local f pid
	for f in "$BATS_TEST_TMPDIR"/servers/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		[ -n "$pid" ] && kill "$pid" 2>/dev/null
		# Wait for it to go, so the next test's port and files are free.
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		rm -f "$f"
	done
}

# wait_port PORT: until something accepts connections on 127.0.0.1:PORT.
wait_port() {
	local i
	for i in $(seq 100); do
		python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1).close()' \
			"$1" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on 127.0.0.1:$1" >&2
	return 1
}

# git_daemon_start BASE: serve every repository under BASE over git://, pushes
# allowed.  Sets GIT_DAEMON_URL (git://127.0.0.1:PORT).
git_daemon_start() {
	local base=$1 port
	port=$(free_port)
	mkdir -p "$BATS_TEST_TMPDIR/servers"
	git daemon --enable=receive-pack --export-all --reuseaddr --base-path="$base" \
		--listen=127.0.0.1 --port="$port" --pid-file="$BATS_TEST_TMPDIR/servers/git-daemon.pid" \
		--detach "$base"
	wait_port "$port"
	GIT_DAEMON_URL="git://127.0.0.1:$port"
}

# sshd_start [ADDR [PORT]]: an sshd on ADDR (127.0.0.1) and PORT (free) with a
# generated host key, accepting the key made by ssh_key.  Sets SSHD_ADDR,
# SSHD_PORT and SSHD_KNOWN (the known_hosts line for it).
sshd_start() {
	local addr=${1:-127.0.0.1} port=${2:-$(free_port)} dir="$BATS_TEST_TMPDIR/servers"
	mkdir -p "$dir"
	# sshd as root wants its privilege separation directory.
	[ "$(id -u)" != 0 ] || mkdir -p /run/sshd
	[ -e "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519"
	ssh_key
	cat >"$dir/sshd_config" <<CONF
ListenAddress $addr
Port $port
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin yes
PrintMotd no
CONF
	cp "$BATS_TEST_TMPDIR/keys/id_ed25519.pub" "$dir/authorized_keys"
	/usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log" ||
		skip "cannot start sshd here: $(tail -n 1 "$dir/sshd.log" 2>/dev/null)"
	wait_port_at "$addr" "$port" || return 1
	SSHD_ADDR=$addr
	SSHD_PORT=$port
	if [ "$port" = 22 ]; then
		SSHD_KNOWN="$addr $(cut -d' ' -f1,2 "$dir/host_ed25519.pub")"
	else
		SSHD_KNOWN="[$addr]:$port $(cut -d' ' -f1,2 "$dir/host_ed25519.pub")"
	fi
}

wait_port_at() {
	local i
	for i in $(seq 100); do
		python3 -c 'import socket,sys; socket.create_connection((sys.argv[1],int(sys.argv[2])),1).close()' \
			"$1" "$2" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on $1:$2" >&2
	return 1
}

# ssh_key: the client key pair every machine of the test uses (made once).
ssh_key() {
	local k="$BATS_TEST_TMPDIR/keys"
	[ -e "$k/id_ed25519" ] && return 0
	mkdir -p "$k"
	ssh-keygen -q -t ed25519 -N '' -f "$k/id_ed25519"
}

# ssh_trust HOMEDIR: give a home the client key and the server in known_hosts.
ssh_trust() {
	mkdir -p "$1/.ssh"
	chmod 700 "$1/.ssh"
	cp "$BATS_TEST_TMPDIR/keys/id_ed25519" "$BATS_TEST_TMPDIR/keys/id_ed25519.pub" "$1/.ssh/"
	printf '%s\n' "$SSHD_KNOWN" >>"$1/.ssh/known_hosts"
}

# A silent server: accepts connections and never answers.  Sets SILENT_PORT.
silent_start() {
	SILENT_PORT=$(free_port)
	mkdir -p "$BATS_TEST_TMPDIR/servers"
	python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' "$SILENT_PORT" &
	echo $! >"$BATS_TEST_TMPDIR/servers/silent.pid"
	wait_port "$SILENT_PORT"
}

# git_machine NAME: a machine (helper's `machine`) with git configured like ours.
git_machine() {
	machine "$1"
	cp "$HOME/.gitconfig" "$BATS_TEST_TMPDIR/machines/$1/home/.gitconfig"
}

# mhome NAME: that machine's HOME.
mhome() {
	printf '%s\n' "$BATS_TEST_TMPDIR/machines/$1/home"
}

# handmade NAME URL [LINEAGE]: a machine with a clone of URL at ~/.dotfiles
# and a V2 state made by heimdal-migrate (no heimdal-lineage needed).
handmade() {
	local name=$1 url=$2 home
	git_machine "$name"
	home=$(mhome "$name")
	as "$name" git clone -q "$url" "$home/.dotfiles" 2>/dev/null
	heimdal-migrate --machine-id "m-$name" --lineage-id "${3:-lineage-test}" "$FIXTURES/v1.json" |
		jq --arg p "$home/.dotfiles" '.dotfiles_path = $p' >"$home/.heimdal/state.json"
	chmod 600 "$home/.heimdal/state.json"
}

# ingit NAME git ...: git in that machine's clone.
ingit() {
	local name=$1
	shift
	as "$name" git -C "$(mhome "$name")/.dotfiles" "$@"
}

# commit_file NAME PATH CONTENT: commit a dotfile in that machine's clone.
commit_file() {
	local d
	d="$(mhome "$1")/.dotfiles"
	mkdir -p "$(dirname "$d/$2")"
	printf '%s\n' "$3" >"$d/$2"
	ingit "$1" add "$2"
	ingit "$1" commit -q -m "edit $2 on $1"
}

# remote_state REMOTE.git: the state the remote's main branch carries.
remote_state() {
	git --git-dir="$1" show main:.heimdal/state.json
}

# record NAME OP: that machine writes its state once (heimdal-lineage bump),
# as any local operation does.
record() {
	local s
	s="$(mhome "$1")/.heimdal/state.json"
	as "$1" heimdal-lineage bump --op "$2" <"$s" >"$s.new" && chmod 600 "$s.new" && mv "$s.new" "$s"
}

# joined NAME...: each machine inits against $REMOTE and syncs, in turn.
joined() {
	local m
	for m in "$@"; do
		[ -d "$(mhome "$m")" ] || git_machine "$m"
		as "$m" heimdal init --profile personal --repo "$REMOTE" --empty >/dev/null || return 1
		as "$m" heimdal sync --no-apply >/dev/null || return 1
	done
}

# shared_view NAME: the state without what stays per machine, for comparing machines.
shared_view() {
	jq -S 'del(.machine, .dotfiles_path, .repo_url, .last_sync, .last_apply, .active_profile, .checksums)' \
		"$(mhome "$1")/.heimdal/state.json"
}

