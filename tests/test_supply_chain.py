"""Supply chain: every dependency has a minimum version, the environment meets it, and pip-audit finds no
known vulnerability in the installed environment.

pip-audit needs a vulnerability service: PyPI's JSON API (``/pypi/<name>/<version>/json``, the default)
or OSV (``api.osv.dev``). The audit test probes both first. It passes only after a real, complete audit
(``--strict``: a dependency that could not be looked up fails the audit). When neither service answers,
it is reported as an expected failure that says exactly what was unreachable; it never passes blind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from importlib import metadata

import pytest
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .conftest import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirements() -> list[tuple[str, Requirement]]:
    project = PYPROJECT["project"]
    found = [("dependencies", Requirement(spec)) for spec in project["dependencies"]]
    for extra, specs in project["optional-dependencies"].items():
        found += [(f"[{extra}]", Requirement(spec)) for spec in specs]
    return [(where, req) for where, req in found if req.name != "kmsenvelope"]


REQUIREMENTS = _requirements()


def _installed_by_test_command() -> list[tuple[str, Requirement]]:
    """Core dependencies plus the ``test`` extra and the extras it pulls in (``kmsenvelope[...]``).

    Only these are installed by the README's test command; ``bench`` and ``fuzz`` may be absent.
    """
    extras = PYPROJECT["project"]["optional-dependencies"]
    wanted, pending = set(), ["test"]
    while pending:
        extra = pending.pop()
        if extra in wanted:
            continue
        wanted.add(extra)
        for spec in extras[extra]:
            requirement = Requirement(spec)
            if requirement.name == "kmsenvelope":
                pending.extend(requirement.extras)
    return [(w, r) for w, r in REQUIREMENTS if w == "dependencies" or w.strip("[]") in wanted]


INSTALLED = _installed_by_test_command()


@pytest.mark.parametrize(
    ("where", "requirement"), REQUIREMENTS, ids=[f"{w}{r.name}" for w, r in REQUIREMENTS]
)
def test_every_dependency_has_a_minimum_version(where: str, requirement: Requirement) -> None:
    floors = [spec for spec in requirement.specifier if spec.operator in (">=", "==", "~=")]
    assert floors, f"{where} {requirement} has no minimum version"


def test_the_test_command_installs_the_test_tools() -> None:
    names = {r.name for _, r in INSTALLED}
    assert {"cryptography", "boto3", "moto", "pytest", "aws-encryption-sdk", "sqlalchemy"} <= names
    assert "tink" not in names  # bench-only


@pytest.mark.parametrize(("where", "requirement"), INSTALLED, ids=[f"{w}{r.name}" for w, r in INSTALLED])
def test_the_environment_meets_the_declared_versions(where: str, requirement: Requirement) -> None:
    if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
        pytest.skip(f"{requirement} does not apply to this platform")
    installed = metadata.version(requirement.name)
    assert requirement.specifier.contains(installed, prereleases=True), f"{requirement.name} {installed}"


def _probe(url: str, body: bytes | None = None) -> str | None:
    """None if the service answered 200, else what went wrong."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"


def test_pip_audit_finds_no_known_vulnerability() -> None:
    pip_version = metadata.version("pip")
    pypi_url = f"https://pypi.org/pypi/pip/{pip_version}/json"
    osv_query = json.dumps({"package": {"name": "pip", "ecosystem": "PyPI"}, "version": pip_version}).encode()
    pypi = _probe(pypi_url)
    osv = _probe("https://api.osv.dev/v1/query", osv_query)
    service = "pypi" if pypi is None else "osv" if osv is None else None

    command = [sys.executable, "-m", "pip_audit", "--local", "--strict", "--progress-spinner", "off"]
    command += ["--format", "json", "--vulnerability-service", service or "pypi", "--timeout", "20"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if service is None:
        error = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        pytest.xfail(
            "NOT AUDITED: no vulnerability service reachable from here. "
            f"PyPI version JSON ({pypi_url}): {pypi}; OSV (api.osv.dev): {osv}. "
            f"pip-audit --strict exited {result.returncode}: {error}"
        )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads(result.stdout)
    audited = [dep for dep in report["dependencies"] if "skip_reason" not in dep]
    vulnerable = {dep["name"]: [v["id"] for v in dep["vulns"]] for dep in audited if dep["vulns"]}
    assert not vulnerable, vulnerable
    assert len(audited) == len(report["dependencies"]) > 20
