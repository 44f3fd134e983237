"""Image references parsed and normalised as Docker does.

``busybox`` means ``docker.io/library/busybox:latest``; a first component with a
``.`` or a ``:`` or named ``localhost`` is a registry host. The grammar is the one
of github.com/distribution/reference, written out as regular expressions.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from skiff.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALPHANUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUM}(?:{_SEPARATOR}{_ALPHANUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_RE = re.compile(_DOMAIN)
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)
_SHA256_HEX_RE = re.compile(r"[a-f0-9]{64}")


class Reference(NamedTuple):
    """A normalised reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name, e.g. ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The short repository name Docker shows: ``busybox``, ``user/repo``, ``host:5000/x``."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in self.path[len(OFFICIAL_REPO_PREFIX):]:
                return self.path[len(OFFICIAL_REPO_PREFIX):]
            return self.path
        return self.name

    @property
    def familiar(self) -> str:
        """The short form with tag and digest, e.g. ``busybox:latest``."""
        return self._with_suffix(self.familiar_name)

    def __str__(self) -> str:
        return self._with_suffix(self.name)

    def _with_suffix(self, name: str) -> str:
        if self.tag:
            name += f":{self.tag}"
        if self.digest:
            name += f"@{self.digest}"
        return name

    def with_default_tag(self) -> "Reference":
        """Add ``:latest`` when neither a tag nor a digest was given, as Docker does."""
        if self.tag or self.digest:
            return self
        return Reference(self.domain, self.path, DEFAULT_TAG, None)


def parse_reference(text: str) -> Reference:
    """Parse ``text`` and fill in Docker's defaults (registry, ``library/``, ``latest``)."""
    return parse_reference_raw(text).with_default_tag()


def parse_reference_raw(text: str) -> Reference:
    """Parse ``text`` without adding a default tag."""
    if not text:
        raise InvalidReference("invalid reference format: empty image reference")
    if _SHA256_HEX_RE.fullmatch(text):
        raise InvalidReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    remainder, digest = _split_digest(text)
    remainder, tag = _split_tag(remainder)
    domain, path = _split_domain(remainder)
    if len(f"{domain}/{path}") > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"invalid reference format: repository name must not be more than "
                               f"{NAME_TOTAL_LENGTH_MAX} characters: {text}")
    return Reference(domain, path, tag, digest)


def _split_digest(text: str) -> tuple[str, str | None]:
    name, sep, digest = text.partition("@")
    if not sep:
        return text, None
    if not _DIGEST_RE.fullmatch(digest):
        raise InvalidReference(f"invalid reference format: bad digest in {text!r}")
    algorithm, _, hex_ = digest.partition(":")
    if algorithm == "sha256" and not _SHA256_HEX_RE.fullmatch(hex_):
        raise InvalidReference(f"invalid reference format: sha256 digest must be 64 lowercase hex "
                               f"characters in {text!r}")
    return name, digest


def _split_tag(name: str) -> tuple[str, str | None]:
    # A ':' after the last '/' starts a tag; one before it belongs to host:port.
    colon = name.rfind(":")
    if colon <= name.rfind("/"):
        return name, None
    tag = name[colon + 1:]
    if not _TAG_RE.fullmatch(tag):
        raise InvalidReference(f"invalid reference format: bad tag {tag!r}")
    return name[:colon], tag


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and (("." in first or ":" in first) or first == "localhost" or first.lower() != first):
        domain, path = first, rest
        if not _DOMAIN_RE.fullmatch(domain):
            raise InvalidReference(f"invalid reference format: bad registry host {domain!r}")
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if path.lower() != path and _PATH_RE.fullmatch(path.lower()):
        raise InvalidReference("invalid reference format: repository name must be lowercase")
    if not _PATH_RE.fullmatch(path):
        raise InvalidReference(f"invalid reference format: {name!r} is not a valid repository name")
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    return domain, path


def is_image_id(text: str) -> bool:
    """A full image id, with or without its ``sha256:`` prefix."""
    return bool(_SHA256_HEX_RE.fullmatch(text.removeprefix("sha256:")))
