"""A real OpenSSH server on loopback serving git repositories, for the SSH tests.

``SSHServer`` runs Debian's ``/usr/sbin/sshd`` as a child process (no system
service) with its own host key, config and authorized_keys, listening on a free
port of 127.0.0.1. Clients log in as the current user with the generated client
key; the login shell runs ``git-upload-pack`` on an absolute path, so a repository
on the GitServer's disk is reachable as ``ssh://USER@127.0.0.1:PORT/ABS/PATH.git``.

Nothing here skips: when sshd is missing the fixture fails with what to install.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from tests.support.ports import free_port

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True, timeout=30)
    path.chmod(0o600)
    return path.with_suffix(".pub").read_text().strip()


class SSHServer:
    """sshd on 127.0.0.1 with a private host key; `client_key` logs in as the current user."""

    def __init__(self, root: Path) -> None:
        if not SSHD.is_file():
            raise RuntimeError(
                f"{SSHD} not found: install Debian's openssh-server (`apt-get install -y openssh-server`); "
                "scripts/test does this when run as root"
            )
        if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
            raise RuntimeError("the OpenSSH client (ssh, ssh-keygen) is not on PATH: install openssh-client")
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.user = getpass.getuser()
        self.port = free_port()
        self.client_key = self.root / "client_key"
        self.other_key = self.root / "other_key"
        self.host_key = self.root / "host_key"
        self.known_hosts = self.root / "known_hosts"
        self.wrong_known_hosts = self.root / "wrong_known_hosts"
        self.log_path = self.root / "sshd.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        client_pub = _keygen(self.client_key, "gitops-agent-test-client")
        _keygen(self.other_key, "not-authorized")
        host_pub = _keygen(self.host_key, "gitops-agent-test-host")
        stranger_pub = _keygen(self.root / "stranger_host_key", "some-other-host")
        (self.root / "authorized_keys").write_text(f"restrict {client_pub}\n")
        entry = f"[127.0.0.1]:{self.port}"
        self.known_hosts.write_text(f"{entry} {' '.join(host_pub.split()[:2])}\n")
        self.wrong_known_hosts.write_text(f"{entry} {' '.join(stranger_pub.split()[:2])}\n")
        config = self.root / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
            f"PidFile {self.root / 'sshd.pid'}", f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
            "StrictModes no", "PubkeyAuthentication yes", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "PermitRootLogin prohibit-password",
            f"AllowUsers {self.user}", "AcceptEnv GIT_PROTOCOL", "PrintMotd no", "LogLevel VERBOSE", "",
        ]))
        if os.geteuid() == 0:
            PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)],
                                      stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self._proc.returncode}: {self.log_path.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on port {self.port}: {self.log_path.read_text()}")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def url(self, repo_path: Path) -> str:
        """`ssh://USER@127.0.0.1:PORT/abs/path/name.git` for a bare repository on this machine."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repo_path}"

    @property
    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")
