# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_vers_tunnel_global_optspecs
    string join \n p/port= cacert= connect-to= connect-timeout= 4/ipv4 6/ipv6 v/verbose proxy= noproxy= proxy-cacert= make-ssh-dir h/help V/version
end

function __fish_vers_tunnel_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_vers_tunnel_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_vers_tunnel_using_subcommand
    set -l cmd (__fish_vers_tunnel_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -s p -l port -d 'Port to connect to (default 443)' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -l cacert -d 'Also trust the CA certificates in this PEM file (repeatable; SSL_CERT_FILE is read too)' -r -F
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -l connect-to -d 'Connect to CONNECT_HOST:CONNECT_PORT instead, keeping SNI and verification for HOST:PORT' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -l connect-timeout -d 'Give up if resolving, connecting and the TLS handshake take longer than SECS' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -l proxy -d 'Tunnel through this HTTP(S) proxy ([http|https://][USER:PASSWORD@]HOST[:PORT]); \'\' for none' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -l noproxy -d 'Reach hosts in this comma-separated list without the proxy (overrides NO_PROXY; \'*\' for all)' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -l proxy-cacert -d 'Also trust the CA certificates in this PEM file for an https:// proxy (repeatable)' -r -F
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -s 4 -l ipv4 -d 'Use IPv4 addresses only'
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -s 6 -l ipv6 -d 'Use IPv6 addresses only'
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -s v -l verbose -d 'Log connection details to stderr (-vv for more); RUST_LOG overrides'
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -l make-ssh-dir -d 'First create ~/.ssh (mode 0700) if it is missing, for ssh\'s control socket (the `ssh-config --multiplex` block sets this)'
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -s h -l help -d 'Print help'
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -s V -l version -d 'Print version'
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -f -a "forward" -d 'Listen on local ports and forward each connection over verified TLS to a VM\'s port'
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -f -a "doctor" -d 'Check each step of reaching HOST[:PORT] through the edge, and say which fails and why'
complete -c vers-tunnel -n "__fish_vers_tunnel_needs_command" -f -a "ssh-config" -d 'Print an ssh_config block that makes ssh reach Vers VMs through vers-tunnel, or keep it in your ssh config (--install)'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand forward" -l from -d 'Also read mappings from FILE, one a line (# starts a comment)' -r -F
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand forward" -l max-connections -d 'Most connections at once, for all mappings; more wait to be accepted [default: from the open-files limit]' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand forward" -l cacert -d 'Also trust the CA certificates in this PEM file (repeatable; SSL_CERT_FILE is read too)' -r -F
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand forward" -l connect-to -d 'Connect to CONNECT_HOST:CONNECT_PORT instead, keeping SNI and verification for HOST:PORT' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand forward" -l connect-timeout -d 'Give up if resolving, connecting and the TLS handshake take longer than SECS' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand forward" -l proxy -d 'Tunnel through this HTTP(S) proxy ([http|https://][USER:PASSWORD@]HOST[:PORT]); \'\' for none' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand forward" -l noproxy -d 'Reach hosts in this comma-separated list without the proxy (overrides NO_PROXY; \'*\' for all)' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand forward" -l proxy-cacert -d 'Also trust the CA certificates in this PEM file for an https:// proxy (repeatable)' -r -F
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand forward" -s 4 -l ipv4 -d 'Use IPv4 addresses only'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand forward" -s 6 -l ipv6 -d 'Use IPv6 addresses only'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand forward" -s v -l verbose -d 'Log connection details to stderr (-vv for more); RUST_LOG overrides'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand forward" -s h -l help -d 'Print help'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand forward" -s V -l version -d 'Print version'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand doctor" -l cacert -d 'Also trust the CA certificates in this PEM file (repeatable; SSL_CERT_FILE is read too)' -r -F
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand doctor" -l connect-to -d 'Connect to CONNECT_HOST:CONNECT_PORT instead, keeping SNI and verification for HOST:PORT' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand doctor" -l connect-timeout -d 'Give up if resolving, connecting and the TLS handshake take longer than SECS' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand doctor" -l proxy -d 'Tunnel through this HTTP(S) proxy ([http|https://][USER:PASSWORD@]HOST[:PORT]); \'\' for none' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand doctor" -l noproxy -d 'Reach hosts in this comma-separated list without the proxy (overrides NO_PROXY; \'*\' for all)' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand doctor" -l proxy-cacert -d 'Also trust the CA certificates in this PEM file for an https:// proxy (repeatable)' -r -F
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand doctor" -l wait -d 'Wait up to SECS for the service\'s first bytes' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand doctor" -s 4 -l ipv4 -d 'Use IPv4 addresses only'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand doctor" -s 6 -l ipv6 -d 'Use IPv6 addresses only'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand doctor" -s v -l verbose -d 'Log connection details to stderr (-vv for more); RUST_LOG overrides'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand doctor" -l json -d 'Print one JSON object instead of lines of text'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand ssh-config" -l host -d 'Host pattern(s) the block applies to, in ssh_config `Host` syntax [default: *.vm.vers.sh]' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand ssh-config" -l path -d 'The vers-tunnel binary ssh should run [default: this binary\'s absolute path]' -r -F
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand ssh-config" -l persist -d 'With --multiplex: how long an idle shared connection stays open, in ssh\'s time format (30s, 10m, 1h30m) [default: 10m]' -r
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand ssh-config" -l multiplex -d 'Share one connection per VM between ssh, scp and sftp runs (ControlMaster)'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand ssh-config" -l install -d 'Put the block at the top of your ~/.ssh/config (%USERPROFILE%\\.ssh\\config on Windows) between marker comments, or replace it there; nothing else in the file changes'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand ssh-config" -l uninstall -d 'Remove the block that --install put in your ssh config'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand ssh-config" -s h -l help -d 'Print help'
complete -c vers-tunnel -n "__fish_vers_tunnel_using_subcommand ssh-config" -s V -l version -d 'Print version'
