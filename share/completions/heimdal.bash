# bash completion for heimdal and its plumbing tools.
# Install as /usr/share/bash-completion/completions/heimdal (make install does),
# or source it from ~/.bashrc.

_heimdal_commands="state apply commit init pull push sync resolve status diff doctor add forget help version"
_heimdal_state_commands="version history migrate query check-drift check-conflicts resolve diff lock-info unlock"

# The long flags of a command path ("apply", "state resolve", "lock acquire").
_heimdal_flags() {
	case $1 in
	heimdal) echo "--verbose --exec-path --version --help" ;;
	apply) echo "--force --dry-run --profile --help" ;;
	commit) echo "--message --help" ;;
	init) echo "--profile --repo --path --force --empty --help" ;;
	pull) echo "--help" ;;
	push) echo "--force --help" ;;
	sync) echo "--no-apply --help" ;;
	resolve) echo "--merged --ours --theirs --help" ;;
	status) echo "--json --compact --help" ;;
	diff) echo "--upstream --stat --color --no-color --help" ;;
	doctor) echo "--json --compact --help" ;;
	add) echo "--profile --shared --force --dry-run --help" ;;
	forget) echo "--yes --help" ;;
	"state version") echo "--json --compact --help" ;;
	"state history") echo "--limit --long --json --compact --help" ;;
	"state migrate") echo "--no-backup --json --compact --help" ;;
	"state query") echo "--compact-output --raw-output --join-output --ascii-output --sort-keys --tab --indent --null-input --slurp --exit-status --color-output --monochrome-output --seq --unbuffered --raw-input --stream --from-file --arg --argjson --slurpfile --rawfile --argfile --args --jsonargs --help" ;;
	"state check-drift") echo "--all --json --compact --help" ;;
	"state check-conflicts") echo "--remote --json --compact --help" ;;
	"state resolve") echo "--use-local --use-remote --merge --manual --remote --help" ;;
	"state diff") echo "--remote --json --compact --help" ;;
	"state lock-info") echo "--json --compact --help" ;;
	"state unlock") echo "--force --id --json --compact --help" ;;
	migrate) echo "--compact --machine-id --lineage-id --help" ;;
	"lineage bump") echo "--op --git-commit --above --compact --help" ;;
	"lineage compare") echo "--local --remote --base --compact --help" ;;
	lineage) echo "--help" ;;
	conflicts) echo "--local --remote --base --diff --compact --help" ;;
	merge) echo "--strategy --local --remote --base --report --compact --help" ;;
	drift) echo "--root --all --no-cache --jobs --compact --verbose --help" ;;
	"lock acquire") echo "--op --reason --expected-duration --pid --wait --state --no-conflict-check --compact --verbose --help" ;;
	"lock release") echo "--id --verbose --help" ;;
	"lock info") echo "--compact --verbose --help" ;;
	"lock unlock") echo "--force --id --state --compact --verbose --help" ;;
	"lock run") echo "--op --reason --expected-duration --wait --state --no-conflict-check --verbose --help" ;;
	lock) echo "--help" ;;
	"rlock acquire") echo "--repository --state --compact --verbose --help" ;;
	"rlock recover") echo "--repository --compact --verbose --help" ;;
	"rlock release") echo "--compact --verbose --help" ;;
	rlock) echo "--help" ;;
	esac
}

# The heimdal-* tools on PATH, by their short names (migrate, lock, ...).
_heimdal_tools() {
	compgen -c heimdal- 2>/dev/null | sed 's/^heimdal-//' | sort -u
}

# Subcommands of a plumbing tool that has them.
_heimdal_subcommands() {
	case $1 in
	lineage) echo "bump compare" ;;
	lock) echo "acquire release info unlock run" ;;
	rlock) echo "acquire release recover" ;;
	esac
}

# Flags whose value is a file or directory.
_heimdal_file_flag() {
	case $1 in
	--local | --remote | --base | --report) return 0 ;;
	esac
	return 1
}

# Complete for tool (a heimdal command or a plumbing name) at words[start..].
_heimdal_complete_tool() {
	local tool=$1 start=$2 sub="" i
	local subs
	subs=$(_heimdal_subcommands "$tool")
	for ((i = start; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--) COMPREPLY=($(compgen -c -- "$cur" | sort -u)); return ;;
		-*) ;;
		*) if [ -z "$sub" ] && [[ " $subs " == *" ${COMP_WORDS[i]} "* ]]; then sub=${COMP_WORDS[i]}; fi ;;
		esac
	done
	if _heimdal_file_flag "$prev" || [ "$prev" = --path ] || [ "$prev" = --root ]; then
		COMPREPLY=($(compgen -f -- "$cur"))
		return
	fi
	case $prev in
	--strategy) COMPREPLY=($(compgen -W "merge use-local use-remote manual" -- "$cur")); return ;;
	--profile | -p)
		# -p is --profile, for the commands that take one (heimdal(7), OPTION LETTERS).
		case $tool in
		apply | add | init) COMPREPLY=($(compgen -W "$(ls "${HOME}/.dotfiles/profiles" 2>/dev/null)" -- "$cur")) ;;
		esac
		return
		;;
	esac
	if [ -n "$subs" ] && [ -z "$sub" ] && [[ $cur != -* ]]; then
		COMPREPLY=($(compgen -W "$subs" -- "$cur"))
		return
	fi
	if [[ $cur == -* ]]; then
		local key=$tool
		[ -z "$sub" ] || key="$tool $sub"
		COMPREPLY=($(compgen -W "$(_heimdal_flags "$key")" -- "$cur"))
		return
	fi
	COMPREPLY=($(compgen -f -- "$cur"))
}

_heimdal() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local cmd="" i
	COMPREPLY=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	if [ -z "$cmd" ]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$(_heimdal_flags heimdal)" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$_heimdal_commands $(_heimdal_tools)" -- "$cur"))
		fi
		return
	fi
	case $cmd in
	state)
		local sub="" j
		for ((j = i + 1; j < COMP_CWORD; j++)); do
			case ${COMP_WORDS[j]} in
			-*) ;;
			*) sub=${COMP_WORDS[j]}; break ;;
			esac
		done
		if [ -z "$sub" ]; then
			COMPREPLY=($(compgen -W "$_heimdal_state_commands" -- "$cur"))
		elif [ "$prev" = --remote ]; then
			COMPREPLY=($(compgen -f -- "$cur"))
		elif [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$(_heimdal_flags "state $sub")" -- "$cur"))
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi
		;;
	help)
		# heimdal help [COMMAND [SUBCOMMAND]]: the commands, the plumbing, and
		# after "state" or a tool with subcommands, those.
		local what="" j
		for ((j = i + 1; j < COMP_CWORD; j++)); do
			what=${COMP_WORDS[j]}
			break
		done
		if [ -z "$what" ]; then
			COMPREPLY=($(compgen -W "$_heimdal_commands $(_heimdal_tools)" -- "$cur"))
		elif [ "$what" = state ] && [ "$COMP_CWORD" -eq $((i + 2)) ]; then
			COMPREPLY=($(compgen -W "$_heimdal_state_commands" -- "$cur"))
		elif [ "$COMP_CWORD" -eq $((i + 2)) ]; then
			COMPREPLY=($(compgen -W "$(_heimdal_subcommands "$what")" -- "$cur"))
		fi
		;;
	*)
		_heimdal_complete_tool "$cmd" $((i + 1))
		;;
	esac
}

# heimdal-<tool> run by its own name.
_heimdal_plumbing() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()
	_heimdal_complete_tool "${COMP_WORDS[0]##*heimdal-}" 1
}

complete -F _heimdal heimdal
complete -F _heimdal_plumbing heimdal-migrate heimdal-lineage heimdal-conflicts \
	heimdal-merge heimdal-drift heimdal-lock heimdal-rlock
