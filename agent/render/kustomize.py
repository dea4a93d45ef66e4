"""The real `kustomize build` (or `kubectl kustomize`) as an asyncio subprocess.

It runs in its own process group, so a timeout kills whatever it started too (git for
a remote base), and its output is capped. Exec plugins stay off.

It gets a minimal environment, not the agent's (which may hold git tokens, cloud
credentials, a proxy password): PATH, a private empty HOME, LANG. git, which kustomize
runs for remote bases, may use only https and ssh (GIT_ALLOW_PROTOCOL), so a remote
base cannot in turn name a `file://` repository on the agent's disk. Only when remote
bases are allowed at all does kustomize also get what reaching them may need: the
HTTPS proxy (unless its URL carries credentials), CA bundle locations, GIT_SSH_COMMAND.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from agent.errors import RenderError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
STDERR_KEEP = 64 * 1024  # the tail of kustomize's stderr that is kept for the error message
# Passed through only when remote bases are allowed: what fetching them may need, and no secret.
REMOTE_VARIABLES = ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR",
                    "GIT_SSL_CAINFO", "GIT_SSH_COMMAND")


def kustomization_file(files: Mapping[str, bytes]) -> str | None:
    """The kustomization file directly in a directory (its files, relative to it), if any."""
    return next((name for name in KUSTOMIZATION_FILES if name in files), None)


def is_kustomization(files: Mapping[str, bytes]) -> bool:
    return kustomization_file(files) is not None


def kustomize_command(configured: str = "") -> list[str]:
    """The command that builds: the configured binary, else `kustomize`, else `kubectl kustomize`."""
    if configured:
        return [configured, "kustomize"] if Path(configured).name == "kubectl" else [configured, "build"]
    for name, verb in (("kustomize", "build"), ("kubectl", "kustomize")):
        found = shutil.which(name)
        if found:
            return [found, verb]
    raise RenderError("kustomize is not installed: neither kustomize nor kubectl is on PATH "
                      "(install kustomize or set [agent] kustomize_path)")


def kustomize_environment(home: Path, *, remote: bool, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The whole environment kustomize runs with (see the module's docstring)."""
    env = {
        "PATH": environ.get("PATH", os.defpath), "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
        "LANG": "C.UTF-8", "KUSTOMIZE_PLUGIN_HOME": "/nonexistent",
        "GIT_ALLOW_PROTOCOL": "https:ssh", "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }
    if remote:
        for name in REMOTE_VARIABLES:
            value = environ.get(name)
            if value and not (name.lower() == "https_proxy" and "@" in urlsplit(value).netloc):
                env[name] = value
    return env


class _TooMuchOutput(Exception):
    pass


class KustomizeRunner:
    """Runs builds with a timeout and an output cap; counts them (tests and metrics read `builds`)."""

    def __init__(self, *, binary: str = "", timeout: float = 60.0, remote: bool = False) -> None:
        self._binary = binary
        self._timeout = timeout
        self._remote = remote  # remote bases are allowed at all
        self.builds = 0

    async def build(self, directory: Path, *, where: str, scrub: Callable[[str], str], home: Path,
                    max_output: int) -> tuple[bytes, str]:
        """kustomize's output for `directory` and its warnings (stderr).

        `where` names the app's kustomization in messages; `scrub` rewrites temporary
        paths in kustomize's messages into repository paths; `home` is an empty private
        directory that kustomize gets as HOME; past `max_output` bytes of output (what is
        left of the render's budget) kustomize is stopped.
        """
        command = [*kustomize_command(self._binary), str(directory)]
        self.builds += 1
        try:
            proc = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True,
                env=kustomize_environment(home, remote=self._remote),
            )
        except OSError as exc:
            raise RenderError(f"{where}: cannot run {command[0]}: {exc.strerror or exc} "
                              "(install kustomize or set [agent] kustomize_path)") from exc
        try:
            stdout, stderr = await asyncio.wait_for(self._collect(proc, max_output), timeout=self._timeout)
        except TimeoutError:
            raise RenderError(f"{where}: kustomize build timed out after {self._timeout:g}s") from None
        except _TooMuchOutput:
            raise RenderError(f"{where}: kustomize build printed more than the {max_output} bytes left of the "
                              "render's budget (max_render_bytes)") from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                # Bounded: a grandchild that left the process group could hold a pipe open for ever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        await _drain(proc)
                        await proc.wait()
        messages = scrub(stderr.decode("utf-8", "replace")).strip()
        if proc.returncode != 0:
            raise RenderError(f"{where}: kustomize build failed: {_last_lines(messages)}")
        return stdout, messages

    async def _collect(self, proc: asyncio.subprocess.Process, max_output: int) -> tuple[bytes, bytes]:
        assert proc.stdout is not None and proc.stderr is not None
        reads = [asyncio.ensure_future(_read(proc.stdout, max_output, keep_tail=False)),
                 asyncio.ensure_future(_read(proc.stderr, STDERR_KEEP, keep_tail=True))]
        try:
            stdout, stderr = await asyncio.gather(*reads)
        finally:
            for read in reads:  # one failed (too much output) or all were cancelled (timeout)
                read.cancel()
            await asyncio.gather(*reads, return_exceptions=True)
        await proc.wait()
        return stdout, stderr


async def _drain(proc: asyncio.subprocess.Process) -> None:
    """Read what is left in the pipes of a killed kustomize (a pipe buffer's worth at most): asyncio
    reports the process gone only once its pipes reached end of file, and a reader that stopped
    at the output cap left them full."""
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            while await stream.read(64 * 1024):
                pass


async def _read(stream: asyncio.StreamReader, limit: int, *, keep_tail: bool) -> bytes:
    data = bytearray()
    while chunk := await stream.read(64 * 1024):
        data += chunk
        if len(data) > limit:
            if not keep_tail:
                raise _TooMuchOutput
            del data[:-limit]
    return bytes(data)


def _last_lines(text: str, limit: int = 1500) -> str:
    """The error without kustomize's `# Warning:` lines and `Error: ` prefix; its end when it is long."""
    lines = [line for line in text.splitlines() if not line.startswith("# Warning:")] or text.splitlines()
    text = "\n".join(line.removeprefix("Error: ") for line in lines)
    return text if len(text) <= limit else "…" + text[-limit:]
