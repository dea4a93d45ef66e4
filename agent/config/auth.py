"""`[auth]`: who may call the API. Tokens in kube-apiserver's static token file format, Argo CD's RBAC.

Without `[auth]` the API is open, which is allowed only on a loopback address (a bastion, a
demo) or with `[agent] insecure_no_auth = true` said out loud; see `check_listen`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from agent.config.agent import AgentSettings
from agent.config.reader import Table
from agent.errors import ConfigError
from agent.policy import PolicyError, parse_policy_csv


@dataclass(frozen=True)
class AuthSettings:
    token_file: str  # `token,user,uid[,"group1,group2"]` per line; re-read when it changes
    policy_csv: str = ""  # Argo CD's RBAC CSV: `p, subject, resource, action, object, effect`, `g, member, role`
    policy_default: str = ""  # a role every authenticated subject holds, e.g. role:readonly
    metrics_auth: bool = False  # /metrics needs a token too
    tls_cert_file: str = ""  # serve HTTPS with this certificate chain (PEM) ...
    tls_key_file: str = ""  # ... and key


def parse_auth(table: Table | None) -> AuthSettings | None:
    if table is None:
        return None
    settings = AuthSettings(
        token_file=table.path("token_file", ""),
        policy_csv=table.get("policy_csv", str, ""),
        policy_default=table.get("policy_default", str, ""),
        metrics_auth=table.get("metrics_auth", bool, False),
        tls_cert_file=table.path("tls_cert_file", ""),
        tls_key_file=table.path("tls_key_file", ""),
    )
    if not settings.token_file:
        raise table.error("token_file", "is required: the file of API tokens (token,user,uid[,\"groups\"] lines)")
    if bool(settings.tls_cert_file) != bool(settings.tls_key_file):
        raise table.error("tls_key_file" if settings.tls_cert_file else "tls_cert_file",
                          "give tls_cert_file and tls_key_file together")
    try:
        parse_policy_csv(settings.policy_csv)
    except PolicyError as exc:
        raise table.error("policy_csv", str(exc)) from exc
    table.finish()
    return settings


def is_loopback(host: str) -> bool:
    """Whether a listen host reaches only this machine: 127.0.0.0/8, ::1 or `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def check_listen(agent: AgentSettings, auth: AuthSettings | None, *, file: str) -> None:
    """Refuse an open API on an address others can reach, unless `insecure_no_auth` says so."""
    if auth is not None or agent.insecure_no_auth or is_loopback(agent.listen_host):
        return
    raise ConfigError(
        f"{file}: agent.listen: {agent.listen!r} is not a loopback address and [auth] is not set, so anyone "
        "who can reach it could sync and roll back every application. Add an [auth] table with a token_file "
        "(see docs/access-control.md), listen on 127.0.0.1, or set [agent] insecure_no_auth = true to accept "
        "an open API")
