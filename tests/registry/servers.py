"""Real registries for the tests: the CNCF distribution registry on 127.0.0.1, a token server, a proxy.

Everything listens on 127.0.0.1 at a free port, keeps its files in a temp dir,
and is stopped by the fixture that started it.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlparse

REGISTRY_BIN = "/usr/bin/docker-registry"
SERVICE = "skiff-test-registry"
ISSUER = "skiff-test-issuer"
USER, PASSWORD = "alice", "s3cret-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# --- TLS material -------------------------------------------------------------------


@dataclass
class Pki:
    ca_cert: Path
    cert: Path
    key: Path
    ca_pem: bytes


def make_pki(directory: Path, common_name: str = "127.0.0.1") -> Pki:
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "skiff test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (directory / "ca").mkdir(parents=True, exist_ok=True)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    (directory / "ca" / "ca.crt").write_bytes(ca_pem)
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                             serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    # A client certificate from the same CA, as Docker's certs.d expects it: NAME.cert + NAME.key.
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "skiff test client")]))
              .issuer_name(ca_name).public_key(client_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
              .sign(ca_key, hashes.SHA256()))
    (directory / "client").mkdir(exist_ok=True)
    (directory / "client" / "client.cert").write_bytes(client.public_bytes(serialization.Encoding.PEM))
    (directory / "client" / "client.key").write_bytes(client_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return Pki(directory / "ca" / "ca.crt", directory / "server.crt", directory / "server.key", ca_pem)


# --- the registry ---------------------------------------------------------------------


@dataclass
class Registry:
    port: int
    storage: Path
    proc: subprocess.Popen[bytes]
    tls: Pki | None = None
    token_server: "TokenServer | None" = None
    log: Path | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def blob_file(self, digest: str) -> Path:
        hex_ = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.token_server is not None:
            self.token_server.stop()


def start_registry(directory: Path, *, tls: Pki | None = None, htpasswd: Path | None = None,
                   token: "TokenServer | None" = None, require_client_cert: bool = False) -> Registry:
    port = free_port()
    storage = directory / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    lines = ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true",
             "storage:", "  filesystem:", f"    rootdirectory: {storage}", "  delete:", "    enabled: true",
             "http:", f"  addr: 127.0.0.1:{port}", "  secret: skiff-test-secret"]
    if tls is not None:
        lines += ["  tls:", f"    certificate: {tls.cert}", f"    key: {tls.key}"]
        if require_client_cert:
            lines += ["    clientcas:", f"      - {tls.ca_cert}"]
    if htpasswd is not None:
        lines += ["auth:", "  htpasswd:", "    realm: skiff-test", f"    path: {htpasswd}"]
    if token is not None:
        lines += ["auth:", "  token:", f"    realm: {token.realm}", f"    service: {SERVICE}",
                  f"    issuer: {ISSUER}", f"    rootcertbundle: {token.cert_path}"]
    config = directory / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = directory / "registry.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
    except RuntimeError:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"docker-registry did not start: {log.read_text()}") from None
    return Registry(port, storage, proc, tls, token, log)


def write_htpasswd(path: Path, user: str = USER, password: str = PASSWORD) -> Path:
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    path.write_text(f"{user}:{hashed}\n")
    return path


# --- a token server -----------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _LoopbackServer:
    """An HTTP server of the tests' on 127.0.0.1 at a free port, served by a daemon thread."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class TokenServer(_LoopbackServer):
    """Issues registry JWTs signed by an RSA key whose self-signed cert the registry trusts.

    The registry finds the signing key through the ``x5c`` header (a chain ending
    in its rootcertbundle). ``alice`` gets whatever she asks for; anonymous users
    only ``pull`` on ``public/*``; a wrong password is a 401.
    """

    def __init__(self, directory: Path, expires_in: int = 300) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "skiff test token signer")])
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        directory.mkdir(parents=True, exist_ok=True)
        self.cert_path = directory / "token-signer.crt"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._der = self.cert.public_bytes(serialization.Encoding.DER)
        self.expires_in = expires_in
        self.requests: list[dict[str, object]] = []
        server = self

        class Handler(_QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server._handle(self)

        self._serve(Handler)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlparse(request.path).query)
        user = self._user(request.headers.get("Authorization", ""))
        self.requests.append({"user": user, "scope": query.get("scope", [])})
        if user is False:
            self._reply(request, 401, {"details": "incorrect username or password"})
            return
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            granted = wanted if user else [a for a in wanted if a == "pull" and name.startswith("public/")]
            access.append({"type": kind, "name": name, "actions": granted})
        token = self._sign(user or "", access)
        self._reply(request, 200, {"token": token, "access_token": token, "expires_in": self.expires_in,
                                   "issued_at": datetime.datetime.now(datetime.timezone.utc).isoformat()})

    @staticmethod
    def _user(header: str) -> str | None | bool:
        """The user name, None when anonymous, False for bad credentials."""
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if (user, password) == (USER, PASSWORD) else False

    def _sign(self, subject: str, access: list[dict[str, object]]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._der).decode()]}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + self.expires_in, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)


# --- a forward proxy that can misbehave ----------------------------------------------------


@dataclass
class Proxy(_LoopbackServer):
    """An HTTP forward proxy (plain HTTP only) for HTTP_PROXY.

    ``mangle(path, body) -> body`` may rewrite a response body; ``cut_after`` bytes
    of a blob response, the connection is dropped (once per path).
    """

    mangle: Callable[[str, bytes], bytes] | None = None
    cut_after: int | None = None
    seen: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)

    def start(self) -> "Proxy":
        import http.client

        proxy = self
        cut_done: set[str] = set()

        class Handler(_QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                proxy.seen.append(url.path)
                if self.headers.get("Range"):
                    proxy.ranges.append(self.headers["Range"])
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
                conn.request("GET", url.path + (f"?{url.query}" if url.query else ""), headers=headers)
                upstream = conn.getresponse()
                body = upstream.read()
                conn.close()
                is_blob = "/blobs/" in url.path
                if is_blob and proxy.mangle is not None:
                    body = proxy.mangle(url.path, body)
                self.send_response(upstream.status)
                for key, value in upstream.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if is_blob and proxy.cut_after is not None and url.path not in cut_done and upstream.status == 200:
                    cut_done.add(url.path)
                    self.wfile.write(body[:proxy.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self._serve(Handler)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def environ_without_proxies() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy",
                                                                      "no_proxy")}
