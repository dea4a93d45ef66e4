# Sourced by scripts/test and scripts/demo: make .venv with the project installed.
# Reinstalls only when pyproject.toml changed since the last install.
set -euo pipefail
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_extras="${1:-}"
_python="${PYTHON:-python3}"
if ! "$_python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Python 3.11 or newer is required (tried $_python; set PYTHON=...)" >&2
  exit 1
fi
if [ ! -x "$_root/.venv/bin/python" ]; then
  "$_python" -m venv "$_root/.venv"
fi
_stamp="$_root/.venv/.installed-$(sha256sum "$_root/pyproject.toml" | cut -c1-16)${_extras:+-$_extras}"
if [ ! -f "$_stamp" ]; then
  echo "installing gitops-agent${_extras:+[$_extras]} into .venv" >&2
  "$_root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$_root${_extras:+[$_extras]}"
  touch "$_stamp"
fi
export PATH="$_root/.venv/bin:$PATH"
