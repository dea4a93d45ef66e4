"""A real smart-HTTP git server on loopback for the test suite.

``GitServer`` serves bare repositories under a root directory through
``git http-backend`` (run as a CGI program per request) behind a
``ThreadingHTTPServer`` on ``127.0.0.1``.  It optionally enforces HTTP basic
auth and records every request so tests can assert how often a client talked
to the server (``count``).  With ``delay`` it holds every request that long
before answering and records how many it held at once (``max_concurrent``), so
tests can see how many requests a client keeps in flight.

``WorkTree`` is a git CLI clone of one served repository for authoring
commits, branches and tags and pushing them.

Standard library only.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import gzip
import hmac
import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Final, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["GIT_HTTP_BACKEND", "KINDS", "GitServer", "Kind", "RequestRecord", "WorkTree", "git_env"]

GIT_HTTP_BACKEND: Final = Path("/usr/lib/git-core/git-http-backend")

Kind = Literal["ls-remote", "fetch", "ls-refs", "push-advertise", "push", "probe"]
KINDS: Final[frozenset[str]] = frozenset({"ls-remote", "fetch", "ls-refs", "push-advertise", "push", "probe"})

# Path suffixes git http-backend understands (smart and dumb protocol).
_REPO_SUFFIXES: Final = (
    "/info/refs",
    "/git-upload-pack",
    "/git-receive-pack",
    "/HEAD",
    "/objects/info/alternates",
    "/objects/info/http-alternates",
    "/objects/info/packs",
)

_COPY_CHUNK: Final = 64 * 1024


# --------------------------------------------------------------------------- #
# Controlled git environment
# --------------------------------------------------------------------------- #

_home_lock = threading.Lock()
_home_dir: Path | None = None


def _git_home() -> Path:
    """A private HOME (with a minimal .gitconfig) shared by this process."""
    global _home_dir
    with _home_lock:
        if _home_dir is None:
            home = Path(tempfile.mkdtemp(prefix="gitserver-home-"))
            (home / ".gitconfig").write_text(
                "[user]\n"
                "\tname = Dev\n"
                "\temail = dev@example.com\n"
                "[init]\n"
                "\tdefaultBranch = main\n"
                "[advice]\n"
                "\tdetachedHead = false\n"
                "[commit]\n"
                "\tgpgSign = false\n"
                "[tag]\n"
                "\tgpgSign = false\n",
                encoding="utf-8",
            )
            atexit.register(shutil.rmtree, home, True)
            _home_dir = home
        return _home_dir


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for running git isolated from the user's and system config.

    Built from scratch (only PATH is inherited) so proxy variables, credential
    helpers, GIT_DIR and similar cannot leak in; git never prompts.
    """
    home = _git_home()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "LANG": "C",
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_TERMINAL_PROMPT": "0",
    }
    if extra:
        env.update(extra)
    return env


def _redact(text: str, secret: str | None) -> str:
    if not secret:
        return text
    return text.replace(quote(secret, safe=""), "***").replace(secret, "***")


def _run_git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    secret: str | None = None,
) -> str:
    """Run git; return stdout; raise RuntimeError carrying git's stderr."""
    cmd = ["git", *args]
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=git_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()) or "(no output)"
        raise RuntimeError(
            _redact(
                f"{' '.join(cmd)} failed with exit code {proc.returncode}:\n{detail}",
                secret,
            )
        )
    return proc.stdout


# --------------------------------------------------------------------------- #
# Request bookkeeping
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request the server answered.

    ``path`` is the URL path (percent-decoded), ``query`` the raw query string,
    ``service`` ``"git-upload-pack"``/``"git-receive-pack"`` (or None for dumb
    or unknown paths), ``repo`` the repository name as given to
    ``create_repo`` (without ``.git``; None if the path names no repository),
    ``status`` the HTTP status sent.  ``command`` is the protocol v2 command of
    an upload-pack POST (``"ls-refs"``/``"fetch"``), ``"probe"`` for the
    flush-only POST git sends before a large chunked request, None otherwise;
    ``git_protocol`` the client's ``Git-Protocol`` header (``"version=2"``);
    ``content_encoding``/``chunked`` how the request body was sent.
    """

    method: str
    path: str
    query: str
    service: str | None
    repo: str | None
    status: int
    command: str | None = None
    git_protocol: str | None = None
    content_encoding: str | None = None
    chunked: bool = False

    def with_status(self, status: int) -> RequestRecord:
        return replace(self, status=status)

    @property
    def kind(self) -> Kind | None:
        """Classify the request (see ``GitServer.count``)."""
        if self.method == "GET" and self.path.endswith("/info/refs"):
            if self.service == "git-upload-pack":
                return "ls-remote"
            if self.service == "git-receive-pack":
                return "push-advertise"
            return None
        if self.method == "POST" and self.command == "probe":
            return "probe"
        if self.method == "POST" and self.service == "git-upload-pack":
            return "ls-refs" if self.command == "ls-refs" else "fetch"
        if self.method == "POST" and self.service == "git-receive-pack":
            return "push"
        return None


def _split_repo(path: str) -> str | None:
    """'/org/app.git/info/refs' -> 'org/app'."""
    for suffix in _REPO_SUFFIXES:
        if path.endswith(suffix):
            repo = path[: -len(suffix)].strip("/")
            break
    else:
        marker = path.find(".git/")
        if marker < 0:
            return None
        repo = path[: marker + len(".git")].strip("/")
    if repo.endswith(".git"):
        repo = repo[: -len(".git")]
    return repo or None


def _service_of(method: str, path: str, query: str) -> str | None:
    if path.endswith("/info/refs"):
        services = parse_qs(query).get("service")
        return services[0] if services else None
    if method == "POST":
        for service in ("git-upload-pack", "git-receive-pack"):
            if path.endswith("/" + service):
                return service
    return None


def _v2_command(body: bytes, content_encoding: str | None) -> str | None:
    """The ``command=`` of a protocol v2 request body, if it is one."""
    try:
        if content_encoding and content_encoding.lower() in ("gzip", "x-gzip"):
            body = gzip.decompress(body)
        if len(body) < 4:
            return None
        length = int(body[:4], 16)
        if length <= 4:
            return None
        line = body[4:length].rstrip(b"\n")
    except (ValueError, OSError, EOFError, zlib.error):
        return None
    if line.startswith(b"command="):
        return line[len(b"command=") :].decode("ascii", "replace")
    return None


# --------------------------------------------------------------------------- #
# HTTP side
# --------------------------------------------------------------------------- #


class _BadRequest(Exception):
    pass


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], git_server: GitServer) -> None:
        self.git_server = git_server
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        # Clients hanging up mid-response (or stop() cutting connections) are
        # normal in tests; anything else is still reported.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gitserver-test/1"
    server: _HTTPServer
    _pending: RequestRecord | None = None

    # -- connection tracking so stop() can cut keep-alive connections ------- #

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        # The access log is self.server.git_server.requests; keep pytest output clean.
        pass

    # -- verbs ---------------------------------------------------------------- #

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    # -- body ------------------------------------------------------------------ #

    def _read_exact(self, n: int) -> bytes:
        parts: list[bytes] = []
        remaining = n
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, _COPY_CHUNK))
            if not chunk:
                raise _BadRequest("connection closed inside request body")
            parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise _BadRequest("bad chunk size line")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise _BadRequest(f"bad chunk size {size_text!r}") from exc
            if size == 0:
                # Trailer section, terminated by an empty line.
                while True:
                    trailer = self.rfile.readline(8192)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(parts)
            parts.append(self._read_exact(size))
            if self.rfile.readline(1024) not in (b"\r\n", b"\n"):
                raise _BadRequest("missing CRLF after chunk")

    def _read_body(self) -> bytes:
        encoding = self.headers.get("Transfer-Encoding", "")
        if "chunked" in encoding.lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError as exc:
            raise _BadRequest(f"bad Content-Length {length!r}") from exc
        if n < 0:
            raise _BadRequest(f"bad Content-Length {length!r}")
        return self._read_exact(n)

    # -- responses ------------------------------------------------------------- #

    def _simple(
        self,
        status: int,
        text: str,
        headers: Mapping[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        payload = (text + "\n").encode("utf-8")
        self._record_once(status)
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    def _authorized(self) -> tuple[bool, str | None]:
        git_server = self.server.git_server
        if git_server.username is None and git_server.password is None:
            return True, None
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False, None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False, None
        user, sep, password = decoded.partition(":")
        if not sep:
            return False, None
        ok = hmac.compare_digest(user.encode(), (git_server.username or "").encode()) & hmac.compare_digest(
            password.encode(), (git_server.password or "").encode()
        )
        return ok, user if ok else None

    def _record_once(self, status: int) -> None:
        """Record this request; called just before the status line is sent.

        Recording before the response (not after it) matters: a client may
        see the whole response and make its next request, and a test may
        assert ``count``, before this handler thread gets scheduled again.
        """
        pending, self._pending = self._pending, None
        if pending is not None:
            self.server.git_server._record(pending.with_status(status))

    def _serve(self) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = split.query
        method = self.command
        service = _service_of(method, path, query)
        content_encoding = self.headers.get("Content-Encoding")
        self._pending = RequestRecord(
            method=method,
            path=path,
            query=query,
            service=service,
            repo=_split_repo(path),
            status=0,
            git_protocol=self.headers.get("Git-Protocol"),
            content_encoding=content_encoding,
            chunked="chunked" in self.headers.get("Transfer-Encoding", "").lower(),
        )
        try:
            try:
                body = self._read_body()
            except _BadRequest as exc:
                self._simple(400, str(exc), close=True)
                return
            if method == "POST" and body == b"0000":
                # git's probe before streaming a large (chunked) request.
                self._pending = replace(self._pending, command="probe")
            elif method == "POST" and service == "git-upload-pack":
                self._pending = replace(self._pending, command=_v2_command(body, content_encoding))
            ok, user = self._authorized()
            if not ok:
                self._simple(401, "authentication required", {"WWW-Authenticate": 'Basic realm="git"'})
                return
            if ".." in path.split("/"):
                self._simple(403, "forbidden path")
                return
            self.server.git_server._hold()
            self._run_backend(path, query, body, user, content_encoding)
        finally:
            # Only reached unrecorded when something failed before a response.
            self._record_once(500)

    def _run_backend(
        self,
        path: str,
        query: str,
        body: bytes,
        user: str | None,
        content_encoding: str | None,
    ) -> None:
        git_server = self.server.git_server
        env = git_env(
            {
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "SERVER_SOFTWARE": self.server_version,
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": str(self.server.server_address[1]),
                "REMOTE_ADDR": str(self.client_address[0]),
                "GIT_PROJECT_ROOT": str(git_server.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_LENGTH": str(len(body)),
            }
        )
        content_type = self.headers.get("Content-Type")
        if content_type:
            env["CONTENT_TYPE"] = content_type
        if user is not None:
            env["REMOTE_USER"] = user
            env["AUTH_TYPE"] = "Basic"
        git_protocol = self.headers.get("Git-Protocol")
        if git_protocol:
            env["HTTP_GIT_PROTOCOL"] = git_protocol
        if content_encoding:
            # http-backend inflates gzip request bodies itself.
            env["HTTP_CONTENT_ENCODING"] = content_encoding

        with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stderr:
            stdin.write(body)
            stdin.seek(0)
            proc = subprocess.Popen(
                [str(GIT_HTTP_BACKEND)],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                cwd=git_server.root,
            )
            assert proc.stdout is not None
            try:
                self._relay(proc.stdout)
            finally:
                proc.stdout.close()
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                stderr.seek(0)
                errors = stderr.read().decode("utf-8", "replace").strip()
                if errors or proc.returncode:
                    git_server._backend_error(f"{self.command} {self.path} -> exit {proc.returncode}: {errors}")

    def _relay(self, out: IO[bytes]) -> None:
        """Turn the CGI response on ``out`` into an HTTP response."""
        status = 200
        reason: str | None = None
        headers: list[tuple[str, str]] = []
        saw_blank = False
        while True:
            line = out.readline(65536)
            if not line:
                break
            if line in (b"\r\n", b"\n"):
                saw_blank = True
                break
            name, sep, value = line.decode("latin-1").rstrip("\r\n").partition(":")
            if not sep:
                continue
            name, value = name.strip(), value.strip()
            if name.lower() == "status":
                code, _, reason_text = value.partition(" ")
                status = int(code)
                reason = reason_text or None
            else:
                headers.append((name, value))
        if not saw_blank:
            self._simple(502, "git http-backend produced no response", close=True)
            return
        if status == 200 and any(n.lower() == "location" for n, _ in headers):
            status = 302

        hop_by_hop = {"connection", "transfer-encoding", "keep-alive"}
        has_length = any(n.lower() == "content-length" for n, _ in headers)
        self._record_once(status)
        self.send_response(status, reason)
        for name, value in headers:
            if name.lower() not in hop_by_hop:
                self.send_header(name, value)
        if not has_length:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        read1 = getattr(out, "read1", out.read)
        while True:
            data: bytes = read1(_COPY_CHUNK)
            if not data:
                break
            if has_length:
                self.wfile.write(data)
            else:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        if not has_length:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #


class GitServer:
    """Smart-HTTP git server on 127.0.0.1 backed by `git http-backend` (CGI)."""

    def __init__(
        self,
        root: Path,
        *,
        username: str | None = None,
        password: str | None = None,
        delay: float = 0.0,
    ) -> None:
        if not GIT_HTTP_BACKEND.is_file() or not os.access(GIT_HTTP_BACKEND, os.X_OK):
            raise RuntimeError(
                f"{GIT_HTTP_BACKEND} not found or not executable; "
                "install git (Debian/Ubuntu package 'git') to run the git server"
            )
        if (username is None) != (password is None):
            raise ValueError("username and password must be given together")
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.username = username
        self.password = password
        self.requests: list[RequestRecord] = []
        self.backend_errors: list[str] = []
        self.delay = delay  # seconds every request is held before it is answered (may be changed any time)
        self.max_concurrent = 0  # the most requests held at once (see _hold)
        self._holding = 0
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # -- lifecycle ---------------------------------------------------------- #

    def start(self) -> None:
        """Listen on 127.0.0.1 (port 0 the first time; the same port on restart)."""
        if self._httpd is not None:
            raise RuntimeError("GitServer already started")
        httpd = _HTTPServer(("127.0.0.1", self._port or 0), self)
        self._port = int(httpd.server_address[1])
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"gitserver-{self._port}",
            daemon=True,
        )
        thread.start()
        self._httpd, self._thread = httpd, thread

    def stop(self) -> None:
        """Stop listening and cut open keep-alive connections. Idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        httpd.shutdown()
        httpd.server_close()
        with httpd.connections_lock:
            open_connections = list(httpd.connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> GitServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("GitServer not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/``."""
        return f"http://127.0.0.1:{self.port}/"

    # -- repositories -------------------------------------------------------- #

    def repo_path(self, name: str) -> Path:
        """Filesystem path of the bare repository ``name``."""
        _check_name(name)
        return self.root / f"{name}.git"

    def create_repo(self, name: str) -> str:
        """Create bare repo ``root/name.git`` (default branch main); return its URL."""
        path = self.repo_path(name)
        if path.exists():
            raise FileExistsError(f"repository {name!r} already exists at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        _run_git(["init", "--quiet", "--bare", "--initial-branch=main", str(path)])
        _run_git(["config", "http.receivepack", "true"], cwd=path)
        _run_git(["config", "receive.denyNonFastForwards", "false"], cwd=path)
        _run_git(["config", "receive.denyDeletes", "false"], cwd=path)
        return self.url(name)

    def url(self, name: str, *, with_credentials: bool = False) -> str:
        """``http://[user:pass@]127.0.0.1:PORT/name.git``."""
        _check_name(name)
        userinfo = ""
        if with_credentials:
            if self.username is None or self.password is None:
                raise ValueError("server has no credentials configured")
            userinfo = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@"
        return f"http://{userinfo}127.0.0.1:{self.port}/{quote(name)}.git"

    # -- request log ----------------------------------------------------------- #

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _hold(self) -> None:
        """Hold one request for ``delay`` seconds, counting how many are held at once.

        The hold comes after the whole request was read and before any byte of the
        answer is sent: its client is certainly still waiting, so ``max_concurrent``
        never counts more requests than the clients really had in flight together.
        """
        with self._lock:
            self._holding += 1
            self.max_concurrent = max(self.max_concurrent, self._holding)
        try:
            if self.delay > 0:
                time.sleep(self.delay)
        finally:
            with self._lock:
                self._holding -= 1

    def _backend_error(self, text: str) -> None:
        with self._lock:
            self.backend_errors.append(text)

    def records(
        self,
        *,
        repo: str | None = None,
        kind: str | None = None,
        include_unauthorized: bool = False,
    ) -> list[RequestRecord]:
        """Snapshot of recorded requests matching the filters (see ``count``)."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(KINDS)}")
        with self._lock:
            snapshot = list(self.requests)
        return [
            r
            for r in snapshot
            if (repo is None or r.repo == repo)
            and (kind is None or r.kind == kind)
            and (include_unauthorized or r.status != 401)
        ]

    def count(
        self,
        *,
        repo: str | None = None,
        kind: str | None = None,
        include_unauthorized: bool = False,
    ) -> int:
        """Number of recorded requests for ``repo`` (name as in create_repo) of ``kind``.

        Kinds: ``"ls-remote"`` GET info/refs?service=git-upload-pack (once per
        client connection/ref listing, protocol v0 and v2 alike);
        ``"fetch"`` POST git-upload-pack other than a protocol v2 ls-refs
        (negotiation can take several rounds); ``"ls-refs"`` a protocol v2
        POST git-upload-pack with command=ls-refs; ``"push-advertise"`` GET
        info/refs?service=git-receive-pack; ``"push"`` POST git-receive-pack;
        ``"probe"`` the body-less POST git sends before a chunked request
        (bodies over http.postBuffer, 1 MiB), not counted as push/fetch.

        Requests answered 401 are left out unless ``include_unauthorized``
        (the git CLI probes without credentials before sending them).
        """
        return len(self.records(repo=repo, kind=kind, include_unauthorized=include_unauthorized))

    def reset_counts(self) -> None:
        """Forget all recorded requests (and ``max_concurrent``)."""
        with self._lock:
            self.requests.clear()
            self.max_concurrent = self._holding


def _check_name(name: str) -> None:
    parts = name.split("/")
    if not name or name.startswith("/") or name.endswith(".git") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad repository name {name!r}")


# --------------------------------------------------------------------------- #
# Authoring commits
# --------------------------------------------------------------------------- #

_clock_lock = threading.Lock()
_last_commit_time = 0


def _next_commit_time() -> int:
    """Strictly increasing commit timestamps, so SHAs never collide by accident."""
    global _last_commit_time
    with _clock_lock:
        _last_commit_time = max(int(time.time()), _last_commit_time + 1)
        return _last_commit_time


def _parse_ident(ident: str) -> tuple[str, str]:
    name, sep, rest = ident.partition("<")
    if not sep or not rest.endswith(">") or not name.strip():
        raise ValueError(f"author must look like 'Name <email>', got {ident!r}")
    return name.strip(), rest[:-1].strip()


class WorkTree:
    """A clone of one repo on the server, for writing commits and pushing (uses the git CLI).

    The clone is made from the bare repository on disk; every push goes
    through the HTTP server (and is recorded there) with credentials in the URL.
    """

    def __init__(self, server: GitServer, name: str, workdir: Path) -> None:
        self.server = server
        self.name = name
        self.workdir = Path(workdir)
        if self.workdir.exists() and any(self.workdir.iterdir()):
            raise FileExistsError(f"{self.workdir} exists and is not empty")
        self.remote_url = server.url(name, with_credentials=server.username is not None)
        bare = server.repo_path(name)
        if not bare.is_dir():
            raise FileNotFoundError(f"no repository {name!r} on the server (create_repo first)")
        self.workdir.parent.mkdir(parents=True, exist_ok=True)
        # Clone from the bare repo on disk: fast, and it leaves no requests in
        # server.requests.  Pushes go over HTTP through the server.
        self._git_raw(["clone", "--quiet", "--no-hardlinks", str(bare), str(self.workdir)], cwd=None)
        self.git("remote", "set-url", "origin", self.remote_url)

    # -- plumbing ------------------------------------------------------------- #

    def _git_raw(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None,
        env: Mapping[str, str] | None = None,
    ) -> str:
        return _run_git(args, cwd=cwd, env=env, secret=self.server.password)

    def git(self, *args: str) -> str:
        """Run ``git ARGS`` in the work tree; return stdout (RuntimeError on failure)."""
        return self._git_raw(args, cwd=self.workdir)

    def _file(self, path: str) -> Path:
        rel = Path(path)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parts[0] == ".git":
            raise ValueError(f"bad path {path!r}")
        return self.workdir / rel

    # -- content --------------------------------------------------------------- #

    def write(self, files: Mapping[str, str | None]) -> None:
        """Write ``path -> content`` (UTF-8, verbatim); None deletes the path."""
        for path, content in files.items():
            target = self._file(path)
            if content is None:
                if target.is_symlink() or target.is_file():
                    target.unlink()
                elif target.is_dir():
                    shutil.rmtree(target)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()
            target.write_bytes(content.encode("utf-8"))

    def symlink(self, path: str, target: str) -> None:
        """Create (or replace) symlink ``path`` pointing at ``target``."""
        link = self._file(path)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.is_file():
            link.unlink()
        os.symlink(target, link)

    # -- history ---------------------------------------------------------------- #

    def commit(self, message: str, *, author: str = "Dev <dev@example.com>") -> str:
        """``git add -A`` and commit (empty commits are an error); return the full SHA."""
        name, email = _parse_ident(author)
        self.git("add", "-A")
        staged = subprocess.run(
            ["git", "diff", "--cached", "--quiet"],
            cwd=self.workdir,
            env=git_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        if staged.returncode == 0:
            raise RuntimeError(f"nothing to commit in {self.workdir}")
        when = f"@{_next_commit_time()} +0000"
        self._git_raw(
            ["commit", "--quiet", "--no-verify", "-m", message],
            cwd=self.workdir,
            env={
                "GIT_AUTHOR_NAME": name,
                "GIT_AUTHOR_EMAIL": email,
                "GIT_AUTHOR_DATE": when,
                "GIT_COMMITTER_DATE": when,
            },
        )
        return self.head()

    def push(self, *, branch: str = "main", force: bool = False) -> None:
        """Push local branch ``branch`` to the same branch on the server."""
        args = ["push", "--quiet", "--porcelain"]
        if force:
            args.append("--force")
        args += ["origin", f"refs/heads/{branch}:refs/heads/{branch}"]
        self.git(*args)

    def commit_and_push(self, files: Mapping[str, str | None], message: str) -> str:
        """write + commit + push the current branch; return the commit SHA."""
        self.write(files)
        sha = self.commit(message)
        self.push(branch=self.current_branch())
        return sha

    def tag(
        self,
        name: str,
        *,
        push: bool = True,
        message: str | None = None,
        force: bool = False,
    ) -> None:
        """Tag HEAD (annotated when ``message`` is given) and by default push the tag."""
        args = ["tag"]
        if force:
            args.append("--force")
        if message is not None:
            when = f"@{_next_commit_time()} +0000"
            self._git_raw(
                [*args, "-a", "-m", message, name],
                cwd=self.workdir,
                env={"GIT_COMMITTER_DATE": when},
            )
        else:
            self.git(*args, name)
        if push:
            push_args = ["push", "--quiet", "--porcelain"]
            if force:
                push_args.append("--force")
            self.git(*push_args, "origin", f"refs/tags/{name}:refs/tags/{name}")

    def checkout_new_branch(self, name: str) -> None:
        """``git checkout -b name``."""
        self.git("checkout", "--quiet", "-b", name)

    def checkout(self, rev: str) -> None:
        """``git checkout rev``."""
        self.git("checkout", "--quiet", rev)

    def reset_hard(self, rev: str) -> None:
        """``git reset --hard rev`` (e.g. to rewrite history for force-push tests)."""
        self.git("reset", "--quiet", "--hard", rev)

    def delete_remote_branch(self, branch: str) -> None:
        """Delete ``branch`` on the server."""
        self.git("push", "--quiet", "--porcelain", "origin", f":refs/heads/{branch}")

    def head(self) -> str:
        """Full SHA of HEAD."""
        return self.git("rev-parse", "HEAD").strip()

    def current_branch(self) -> str:
        return self.git("symbolic-ref", "--short", "HEAD").strip()

    def files(self) -> Iterator[str]:
        """Tracked paths at HEAD."""
        yield from self.git("ls-files").splitlines()
