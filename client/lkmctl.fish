# SPDX-License-Identifier: LGPL-2.1-or-later
# fish completion for lkmctl(1). Installed as "lkmctl.fish" in fish's vendor completions, which
# fish loads the first time lkmctl is completed.

# The module tree of the running kernel and the list of loaded modules; functions so that a test
# can point them elsewhere.
functions -q __lkmctl_module_dir; or function __lkmctl_module_dir
    echo /lib/modules/(uname -r)
end
functions -q __lkmctl_proc_modules; or function __lkmctl_proc_modules
    echo /proc/modules
end

function __lkmctl_loaded_modules
    set -l file (__lkmctl_proc_modules)
    test -r $file; and string replace -r ' .*' '' <$file
end

function __lkmctl_available_modules
    find -L (__lkmctl_module_dir) -type f \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' \
        -o -name '*.ko.gz' \) -printf '%f\n' 2>/dev/null | string replace -r '\.ko(\.(xz|zst|gz))?$' '' | sort -u
end

set -l __lkmctl_commands status list requests monitor info why load unload pin unpin reload explain policy help

complete -c lkmctl -f
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a status -d 'Show whether lkmd runs, its configuration and its counts'
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a list -d 'List the loaded modules'
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a requests -d 'List the last load requests lkmd answered'
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a monitor -d 'Follow requests, loads and unloads'
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a info -d 'Show everything known about a loaded module'
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a why -d 'Show what caused a module to be loaded'
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a load -d 'Load a module and its dependencies'
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a unload -d 'Unload a module'
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a pin -d 'Keep a module loaded when idle'
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a unpin -d 'Let lkmd unload a pinned module when idle'
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a reload -d 'Make lkmd read its configuration again'
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a explain -d 'Show what a load would do and what the policy says'
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a policy -d 'Print an allow-list drop-in (policy suggest)'
complete -c lkmctl -n "not __fish_seen_subcommand_from $__lkmctl_commands" -a help -d 'Show the help'

complete -c lkmctl -n "__fish_seen_subcommand_from info why unload pin unpin" -a '(__lkmctl_loaded_modules)' -d 'loaded module'
complete -c lkmctl -n "__fish_seen_subcommand_from load explain" -a '(__lkmctl_available_modules)' -d module
complete -c lkmctl -n "__fish_seen_subcommand_from policy; and not __fish_seen_subcommand_from suggest" -a suggest -d 'Print an allow-list drop-in'

complete -c lkmctl -s h -l help -d 'Show the help and exit'
complete -c lkmctl -l version -d 'Show the version and exit'
complete -c lkmctl -s H -l host -x -a '(__fish_print_hostnames)' -d 'Talk to lkmd on a remote host'
complete -c lkmctl -s M -l machine -x -d 'Talk to lkmd in a local container'
complete -c lkmctl -l json -x -a 'pretty short off' -d 'Print JSON'
complete -c lkmctl -s j -d 'JSON: pretty on a terminal, short otherwise'
complete -c lkmctl -s l -l full -d 'Do not cut long values to the width'
complete -c lkmctl -l no-pager -d 'Do not pipe output into a pager'
complete -c lkmctl -l no-legend -d 'Leave out header and footer'
complete -c lkmctl -s q -l quiet -d 'Print nothing on success'
complete -c lkmctl -l no-ask-password -d 'Do not let polkit ask for a password'
complete -c lkmctl -l autoclean -d 'load: unload the inserted modules once idle'
complete -c lkmctl -l origin -x -a 'kernel bus hotplug coldplug' -d 'requests: only these origins'
complete -c lkmctl -l result -x -a 'loaded present denied not-found invalid failed' -d 'requests: only these results'
complete -c lkmctl -l since -x -d 'requests: only those since'
complete -c lkmctl -l uid -x -a '(__fish_complete_users)' -d 'requests: only those these users caused'
complete -c lkmctl -l unit -x -d 'requests: only those caused from these units'
