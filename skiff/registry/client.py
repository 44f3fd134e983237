"""A client of the OCI distribution spec: ping, authenticate, fetch manifests and blobs.

One ``RegistryClient`` talks to one registry host. It pings ``/v2/`` once to
learn how to authenticate (nothing, Basic, or Bearer tokens from the realm the
registry names), keeps one token per scope until it expires, and retries
connection errors and 5xx answers with backoff. Blobs are streamed through
``BlobReader``, which checks size and sha256 as the bytes arrive and resumes an
interrupted transfer with ``Range``.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import httpx

from skiff.errors import RegistryAuthError, RegistryError, RegistryNotFound
from skiff.registry import auth
from skiff.registry.config import RegistryConfig

CHUNK = 1 << 20
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
TOKEN_MARGIN_S = 10
USER_AGENT = "skiff/0.1 (+https://github.com/skiff)"
# A request's body: bytes, or what makes a fresh stream of it for each try (an upload from a file).
Content = bytes | Callable[[], Iterator[bytes]] | None


@dataclass
class _Token:
    value: str
    expires: float


class RegistryClient:
    def __init__(self, host: str, config: RegistryConfig | None = None,
                 credentials: auth.Credentials | None = None, *,
                 transport: httpx.BaseTransport | None = None, attempts: int = 4, backoff_s: float = 0.5,
                 base_url: str | None = None) -> None:
        self.host = host                     # "registry-1.docker.io", "127.0.0.1:5000"
        self.config = config or RegistryConfig.load()
        self.credentials = credentials
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._transport = transport
        self._base_url = base_url.rstrip("/") if base_url else None
        self._clients: dict[tuple[str, bool], httpx.Client] = {}
        self._challenge: auth.Challenge | None = None
        self._pinged = False
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()

    # --- connection --------------------------------------------------------

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _http(self, url_host: str, verify: bool = True) -> httpx.Client:
        key = (url_host, verify)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                ssl_ctx = self.config.ssl_context(url_host) if verify else False
                client = httpx.Client(verify=ssl_ctx, timeout=TIMEOUT, follow_redirects=True,
                                      transport=self._transport, headers={"User-Agent": USER_AGENT})
                self._clients[key] = client
            return client

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            self.ping()
        assert self._base_url is not None
        return self._base_url

    def ping(self) -> auth.Challenge | None:
        """GET /v2/: learn the scheme to use and the authentication challenge, once."""
        if self._pinged:
            return self._challenge
        schemes = ["https", "http"] if self.config.is_insecure(self.host) else ["https"]
        if self._base_url is not None:
            schemes = [self._base_url.split("://", 1)[0]]
        last_error: Exception | None = None
        for scheme in schemes:
            url = self._base_url or f"{scheme}://{self.host}"
            # An insecure registry may speak plain HTTP: one quick HTTPS try, then fall back.
            fallback_ahead = scheme != schemes[-1]
            try:
                response = self._send("GET", f"{url}/v2/", verify=not self.config.is_insecure(self.host),
                                      attempts=1 if fallback_ahead else None)
            except RegistryError as exc:
                last_error = exc
                continue
            if response.status_code not in (200, 401):
                raise RegistryError(f"{self.host} does not look like a registry: GET /v2/ answered "
                                    f"{response.status_code}")
            self._base_url = url
            self._challenge = auth.parse_challenge(response.headers.get("www-authenticate", "")) \
                if response.status_code == 401 else None
            self._pinged = True
            return self._challenge
        assert last_error is not None
        raise last_error

    # --- requests ------------------------------------------------------------

    def _send(self, method: str, url: str, headers: dict[str, str] | None = None, stream: bool = False,
              verify: bool = True, attempts: int | None = None, content: Content = None) -> httpx.Response:
        """One request, retried on connection errors and 5xx with exponential backoff (a body is
        bytes, or a function that gives a new stream of it for every try)."""
        host = httpx.URL(url).netloc.decode()
        attempts = attempts or self.attempts
        for attempt in range(attempts):
            try:
                body = content() if callable(content) else content
                request = self._http(host, verify).build_request(method, url, headers=headers, content=body)
                response = self._http(host, verify).send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt + 1 == attempts or _is_tls_error(exc):
                    raise RegistryError(f"cannot reach registry at {url}: {_describe(exc)}",
                                        hint=_hint(exc, host, self.config.registries_file)) from None
            else:
                if response.status_code not in RETRY_STATUSES or attempt + 1 == attempts:
                    return response
                response.close()
            time.sleep(self.backoff_s * (2 ** attempt))
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, scope: str, headers: dict[str, str] | None = None,
                stream: bool = False, content: Content = None) -> httpx.Response:
        """A request to ``/v2/<path>`` authorised for ``scope``; 401 is retried once with a fresh token."""
        return self.request_url(method, f"{self.base_url}/v2/{path}", scope, headers, stream, content)

    def request_url(self, method: str, url: str, scope: str, headers: dict[str, str] | None = None,
                    stream: bool = False, content: Content = None) -> httpx.Response:
        """A request to a URL of the registry (an upload's ``Location``) authorised for ``scope``
        (several scopes: separated by spaces, each its own ``scope`` in the token request)."""
        for renew in (False, True):
            all_headers = dict(headers or {})
            authorization = self._authorization(scope, renew)
            if authorization:
                all_headers["Authorization"] = authorization
            response = self._send(method, url, all_headers, stream=stream, content=content)
            if response.status_code != 401 or renew or self._challenge is None:
                return response
            challenge = auth.parse_challenge(response.headers.get("www-authenticate", ""))
            if challenge is not None and challenge.scheme == "bearer" and self._challenge.scheme == "bearer":
                self._challenge = auth.Challenge("bearer", {**self._challenge.params,
                                                            **{k: v for k, v in challenge.params.items()
                                                               if k in ("realm", "service")}})
            response.close()
        raise AssertionError("unreachable")

    def _authorization(self, scope: str, renew: bool) -> str | None:
        challenge = self.ping()
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            if self.credentials is None:
                raise RegistryAuthError(f"{self.host} requires a login (basic authentication)",
                                        hint=f"run 'skiff login {self.host}'")
            return self.credentials.basic_header()
        if challenge.scheme != "bearer":
            raise RegistryError(f"{self.host} asks for unsupported authentication scheme {challenge.scheme!r}")
        with self._lock:
            token = self._tokens.get(scope)
            if token is not None and not renew and token.expires > time.monotonic():
                return f"Bearer {token.value}"
        token = self._fetch_token(challenge, scope)
        with self._lock:
            self._tokens[scope] = token
        return f"Bearer {token.value}"

    def _fetch_token(self, challenge: auth.Challenge, scope: str | None) -> _Token:
        realm = challenge.params.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise RegistryError(f"{self.host} sent a Bearer challenge without a usable realm: {realm!r}")
        params: dict[str, str | list[str]] = {}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        if scope:
            params["scope"] = scope.split(" ")
        headers = {"Authorization": self.credentials.basic_header()} if self.credentials else {}
        if self.credentials:
            params["account"] = self.credentials.username
        url = str(httpx.URL(realm, params=params))
        response = self._send("GET", url, headers, verify=not self.config.is_insecure(httpx.URL(realm).netloc.decode()))
        if response.status_code in (401, 403):
            raise RegistryAuthError(f"unauthorized: incorrect username or password for {self.host}"
                                    if self.credentials else
                                    f"the token server of {self.host} refused anonymous access")
        if response.status_code != 200:
            raise RegistryError(f"token server {realm} answered {response.status_code}: {_error_text(response)}")
        try:
            body = response.json()
            value = body.get("token") or body.get("access_token")
            lifetime = int(body.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            raise RegistryError(f"token server {realm} sent an invalid answer") from None
        if not value:
            raise RegistryError(f"token server {realm} sent no token")
        return _Token(value, time.monotonic() + max(lifetime - TOKEN_MARGIN_S, 1))

    def check_login(self) -> None:
        """Raise RegistryAuthError unless the credentials are accepted (``skiff login``)."""
        challenge = self.ping()
        if challenge is None:
            return
        if challenge.scheme == "bearer":
            self._fetch_token(challenge, None)
            return
        response = self._send("GET", f"{self.base_url}/v2/", {"Authorization": self._authorization("", True) or ""})
        if response.status_code == 401:
            raise RegistryAuthError(f"unauthorized: incorrect username or password for {self.host}")

    # --- manifests and blobs ---------------------------------------------------

    def get_manifest(self, repository: str, reference: str, accept: str) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest by tag or digest; the digest is computed locally."""
        response = self.request("GET", f"{repository}/manifests/{reference}", _pull_scope(repository),
                                {"Accept": accept})
        if response.status_code != 200:
            raise self._error(response, repository, reference)
        body = response.content
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        return body, media_type, f"sha256:{hashlib.sha256(body).hexdigest()}"

    def get_blob_bytes(self, repository: str, digest: str, size: int, limit: int = 16 << 20) -> bytes:
        """A small blob (an image config), read whole and verified."""
        if size > limit:
            raise RegistryError(f"blob {digest} in {repository} is {size} bytes, more than the {limit} "
                                f"allowed for a config")
        reader = BlobReader(self, repository, digest, size)
        try:
            return reader.read_all()
        finally:
            reader.close()

    def open_blob(self, repository: str, digest: str, offset: int = 0) -> httpx.Response:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = self.request("GET", f"{repository}/blobs/{digest}", _pull_scope(repository), headers, stream=True)
        if response.status_code not in (200, 206):
            response.read()
            raise self._error(response, repository, digest)
        return response

    def _error(self, response: httpx.Response, repository: str, reference: str) -> RegistryError:
        name = f"{self.host}/{repository}"
        codes, text = _error_codes(response)
        status = response.status_code
        if status in (401, 403) or "DENIED" in codes or "UNAUTHORIZED" in codes:
            return RegistryAuthError(f"pull access denied for {name}, repository does not exist or may "
                                     f"require 'skiff login': {text}")
        if "NAME_UNKNOWN" in codes:
            return RegistryNotFound(f"repository {name} not found: {text}")
        if status == 404 and reference.startswith("sha256:") and "MANIFEST_UNKNOWN" not in codes:
            return RegistryError(f"blob {reference} not found in {name}: {text}")
        if status == 404:
            return RegistryNotFound(f"manifest for {name}:{reference} not found: {text}"
                                 if not reference.startswith("sha256:") else
                                 f"manifest for {name}@{reference} not found: {text}")
        return RegistryError(f"registry {self.host} answered {status} for {name} {reference}: {text}")


class BlobReader(io.RawIOBase):
    """A blob as a stream: sha256 and size checked as it is read, resumed with Range after a cut."""

    def __init__(self, client: RegistryClient, repository: str, digest: str, size: int,
                 progress: Callable[[int], None] | None = None) -> None:
        self.client = client
        self.repository = repository
        self.digest = digest
        self.size = size
        self.progress = progress
        self.received = 0
        self._hash = hashlib.sha256()
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._pending = b""
        self._failures = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._next(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def read_all(self) -> bytes:
        parts = []
        while chunk := self.read(CHUNK):
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
        super().close()

    def _next(self, limit: int) -> bytes:
        if not self._pending:
            if self._done:
                return b""
            self._pending = self._fetch()
            if not self._pending:
                self._finish()
                return b""
        data, self._pending = self._pending[:limit], self._pending[limit:]
        return data

    def _fetch(self) -> bytes:
        """The next chunk from the wire, reconnecting from ``received`` after a transport error."""
        while True:
            try:
                if self._chunks is None:
                    self._open()
                assert self._chunks is not None
                chunk = next(self._chunks, b"")
            except httpx.TransportError as exc:
                self._failures += 1
                self._drop()
                if self._failures >= self.client.attempts:
                    raise RegistryError(f"download of blob {self.digest} from {self.client.host}/{self.repository} "
                                        f"failed after {self._failures} attempts: {_describe(exc)}") from None
                time.sleep(self.client.backoff_s * (2 ** (self._failures - 1)))
                continue
            if chunk:
                self._account(chunk)
            return chunk

    def _open(self) -> None:
        response = self.client.open_blob(self.repository, self.digest, self.received)
        skip = self.received if response.status_code == 200 else 0   # the server ignored Range
        self._response = response
        chunks = response.iter_bytes()
        while skip:
            chunk = next(chunks, b"")
            if not chunk:
                break
            if len(chunk) > skip:
                chunks = _prepend(chunk[skip:], chunks)
                skip = 0
            else:
                skip -= len(chunk)
        self._chunks = chunks

    def _account(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.size:
            self._drop()
            raise RegistryError(f"blob {self.digest} from {self.client.host}/{self.repository} is larger than "
                                f"the {self.size} bytes its manifest declares")
        self._hash.update(chunk)
        if self.progress is not None:
            self.progress(len(chunk))

    def _finish(self) -> None:
        self._done = True
        self._drop()
        where = f"{self.client.host}/{self.repository}"
        if self.received < self.size:
            raise RegistryError(f"truncated download of blob {self.digest} from {where}: got {self.received} "
                                f"of {self.size} bytes")
        actual = f"sha256:{self._hash.hexdigest()}"
        if self.digest.startswith("sha256:") and actual != self.digest:
            raise RegistryError(f"blob {self.digest} from {where} does not match its digest: its bytes hash to "
                                f"{actual}; nothing was stored")

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response = None
        self._chunks = None


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def _error_codes(response: httpx.Response) -> tuple[set[str], str]:
    try:
        errors = response.json().get("errors") or []
        codes = {str(e.get("code", "")) for e in errors}
        text = "; ".join(f"{str(e.get('code', '')).lower().replace('_', ' ')}: {e.get('message', '')}"
                         for e in errors)
        return codes, text or f"HTTP {response.status_code}"
    except (ValueError, AttributeError, TypeError):
        return set(), f"HTTP {response.status_code}"


def _error_text(response: httpx.Response) -> str:
    return _error_codes(response)[1]


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def _is_tls_error(exc: httpx.TransportError) -> bool:
    """A TLS failure: retrying cannot help."""
    return "[SSL" in str(exc) or "certificate verify failed" in str(exc)


def _hint(exc: httpx.TransportError, host: str, registries_file: object) -> str | None:
    text = str(exc)
    if "certificate verify failed" in text:
        return f"put the registry's CA certificate in certs.d/{host}/ca.crt"
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return f"it may speak plain HTTP: list {host} under 'insecure' in {registries_file}"
    if "Connection refused" in text or "Name or service not known" in text:
        return "is the registry running and the name right?"
    return None
