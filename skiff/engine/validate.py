"""Values of ``run`` and ``create`` that end up in the container's /etc files, checked as Docker does.

``--hostname`` goes into /etc/hostname and /etc/hosts, ``--add-host`` into
/etc/hosts, ``--dns``, ``--dns-search`` and ``--dns-option`` into
/etc/resolv.conf. A newline in any of them would add lines of the user's
choosing to those files (and a space, extra names or options), so each is
checked here, before anything is created, whatever the network mode.
"""

from __future__ import annotations

import re

from skiff.engine.containers import check_name
from skiff.engine.options import RunOptions
from skiff.errors import InvalidArgument

# One DNS label: letters, digits and inner hyphens (Docker's --dns-search rule).
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*\.?"
# The kernel's HOST_NAME_MAX is 64; Docker's names also allow '_' (container names as host names).
_HOSTNAME = r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}"
# A name in /etc/hosts: anything printable but the separators of that file (blanks and '#').
_HOSTS_NAME = r"[^\s#\x00-\x1f\x7f]+"
_RESOLVER_OPTION = r"[^\s#;\x00-\x1f\x7f]+"
# Patterns are strings, compiled (and cached by re) only when a flag uses them: run's start-up time.


def check_run_options(opts: RunOptions) -> None:
    """Raise InvalidArgument for a container name or an /etc value that Docker refuses."""
    if opts.name is not None:
        check_name(opts.name)
    if opts.hostname is not None and not re.fullmatch(_HOSTNAME, opts.hostname):
        raise InvalidArgument(f"invalid hostname format: {opts.hostname}",
                              hint="at most 64 letters, digits, '.', '-' or '_', starting with a letter or digit")
    for server in opts.dns:
        check_ip(server, "--dns")
    for domain in opts.dns_search:
        if domain != "." and (len(domain) > 255 or not re.fullmatch(_DOMAIN, domain)):
            raise InvalidArgument(f'invalid argument "{domain}" for "--dns-search" flag: '
                                  f"{domain} is not a valid domain")
    for option in opts.dns_options:
        if not re.fullmatch(_RESOLVER_OPTION, option):
            raise InvalidArgument(f'invalid argument "{option}" for "--dns-option" flag: '
                                  "a resolver option has no blanks, control characters, '#' or ';'")
    for spec in opts.add_hosts:
        _check_add_host(spec)
    if opts.network_aliases and (opts.network in ("bridge", "host", "none") or opts.network.startswith("container:")):
        raise InvalidArgument("network-scoped aliases are only supported for user-defined networks")  # docker run's


def check_ip(value: str, flag: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise InvalidArgument(f'invalid argument "{value}" for "{flag}" flag: '
                              f"IP address is not correctly formatted: {value}") from None


def _check_add_host(spec: str) -> None:
    sep = "=" if "=" in spec else ":"
    name, _, address = spec.partition(sep)
    if not name or not address:
        raise InvalidArgument(f'invalid argument "{spec}" for "--add-host" flag: bad format for add-host',
                              hint="use NAME:IP or NAME:host-gateway")
    if not re.fullmatch(_HOSTS_NAME, name):
        raise InvalidArgument(f'invalid argument "{spec}" for "--add-host" flag: invalid host name "{name}"')
    if address != "host-gateway":
        import ipaddress

        try:
            ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            raise InvalidArgument(f'invalid argument "{spec}" for "--add-host" flag: '
                                  f'invalid IP address in add-host: "{address}"') from None
