"""Kustomize: the real `kustomize build` (or `kubectl kustomize`) over a temporary checkout."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from agent.errors import RenderError
from agent.render.plain import Manifest, parse_stream

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
DEFAULT_TIMEOUT = 60.0


def is_kustomization(files: Mapping[str, bytes]) -> bool:
    """Whether an app's directory (its files, relative to it) is a kustomization."""
    return any(name in files for name in KUSTOMIZATION_FILES)


def find_kustomize(configured: str = "") -> list[str]:
    """The command that renders: a configured binary, else `kustomize`, else `kubectl kustomize`."""
    if configured:
        return [configured, "build"]
    for name, command in (("kustomize", ["build"]), ("kubectl", ["kustomize"])):
        found = shutil.which(name)
        if found:
            return [found, *command]
    raise RenderError("neither kustomize nor kubectl was found on PATH; install kustomize")


class Kustomize:
    def __init__(self, *, binary: str = "", max_concurrent: int = 4, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._binary = binary
        self._slots = asyncio.Semaphore(max_concurrent)
        self._timeout = timeout

    async def build(self, tree: Mapping[str, bytes], path: str) -> list[Manifest]:
        """Write the repository tree to a temporary directory and run kustomize on `path` in it."""
        command = find_kustomize(self._binary)
        async with self._slots:
            with tempfile.TemporaryDirectory(prefix="gitops-agent-render-") as tmp:
                await asyncio.to_thread(_write_tree, Path(tmp), tree)
                output = await self._run([*command, str(Path(tmp) / path)], path)
        return await asyncio.to_thread(parse_stream, f"kustomize build {path}", output)

    async def _run(self, command: list[str], path: str) -> bytes:
        try:
            proc = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "KUSTOMIZE_PLUGIN_HOME": "/nonexistent"},
            )
        except OSError as exc:
            raise RenderError(f"{path}: cannot run {command[0]}: {exc.strerror}") from exc
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=self._timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RenderError(f"{path}: kustomize build timed out after {self._timeout:.0f}s") from None
        if proc.returncode != 0:
            message = stderr.decode("utf-8", "replace").strip().replace(str(command[-1]), path)
            raise RenderError(f"{path}: kustomize build failed: {message[-1500:]}")
        return stdout


def _write_tree(root: Path, tree: Mapping[str, bytes]) -> None:
    for rel, content in tree.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
