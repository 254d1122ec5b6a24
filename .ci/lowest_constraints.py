"""Print pip constraints pinning every dependency of inferwatch to the lowest version it allows.

    python .ci/lowest_constraints.py > constraints.txt
    pip install -c constraints.txt -e '.[dev]'

Read from pyproject.toml, so the pins cannot drift from what the package declares: the runtime
dependencies and the runtime extras (pandas, query, drift, alerts; torch has `make test-torch`),
each pinned to the lowest release on the index that its floor (``>=X``) allows. The test tools of
the ``dev`` extra float.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib
from packaging.version import InvalidVersion, Version

RUNTIME_EXTRAS = ("pandas", "query", "drift", "alerts")
_FLOOR = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)")


def floors(pyproject: Path) -> dict[str, str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in RUNTIME_EXTRAS:
        requirements += project["optional-dependencies"][extra]
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = _FLOOR.match(requirement)
        if match is None:
            raise SystemExit(f"no floor (>=) in {requirement!r}: every dependency needs one")
        name, _, version = match.groups()
        pins[name.lower()] = version
    return pins


def lowest_release(name: str, floor: str) -> str:
    """The lowest final release of ``name`` on the index at or above ``floor``."""
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "--pre", name],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(line for line in listing.splitlines() if line.startswith("Available versions:"))
    found = []
    for text in line.split(":", 1)[1].split(","):
        try:
            version = Version(text.strip())
        except InvalidVersion:
            continue
        if version >= Version(floor) and (
            not version.is_prerelease or Version(floor).is_prerelease
        ):
            found.append(version)
    if not found:
        raise SystemExit(f"no release of {name} at or above {floor} on the index")
    return str(min(found))


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    for name, floor in sorted(floors(root / "pyproject.toml").items()):
        sys.stdout.write(f"{name}=={lowest_release(name, floor)}\n")


if __name__ == "__main__":
    main()
