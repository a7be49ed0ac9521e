"""The pytest plugin's public fixture names: ``kmsenvelope_*`` only, so they never collide with other
plugins' or a project's own ``postgres`` / ``local_aws`` fixtures.

Each check runs pytest on a throwaway project (``pytester``) that, like a user's project, has kmsenvelope
installed and none of this suite's conftest aliases.
"""

from __future__ import annotations

import pytest

from kmsenvelope.testing import LocalAws, pytest_plugin

PUBLIC = ("kmsenvelope_local_aws", "kmsenvelope_local_aws_server", "kmsenvelope_postgres")


def test_plugin_defines_exactly_the_prefixed_fixtures() -> None:
    defined = sorted(
        name
        for name, value in vars(pytest_plugin).items()
        if getattr(value, "_fixture_function_marker", None) is not None
        or type(value).__name__ == "FixtureFunctionDefinition"
    )
    assert defined == sorted(PUBLIC) == sorted(pytest_plugin.__all__)


def _plugin_fixtures(pytester: pytest.Pytester) -> dict[str, str]:
    """Fixture name -> its ``--fixtures`` line, for the fixtures the plugin module defines."""
    result = pytester.runpytest("--fixtures")
    assert result.ret == 0, result.stdout.str()
    lines = result.stdout.lines
    title = "fixtures defined from kmsenvelope.testing.pytest_plugin"
    header = [i for i, line in enumerate(lines) if title in line]
    assert len(header) == 1, result.stdout.str()
    found: dict[str, str] = {}
    for line in lines[header[0] + 1 :]:
        if line.startswith("-----") or line.startswith("====="):
            break
        if line and not line.startswith(" "):
            found[line.split()[0]] = line
    return found


def test_fixtures_are_registered_under_their_prefixed_names(pytester: pytest.Pytester) -> None:
    found = _plugin_fixtures(pytester)
    assert sorted(found) == sorted(PUBLIC)
    assert "[session scope]" in found["kmsenvelope_postgres"]
    assert "[session scope]" in found["kmsenvelope_local_aws_server"]
    assert "[session scope]" not in found["kmsenvelope_local_aws"]


def test_users_short_names_do_not_collide(pytester: pytest.Pytester) -> None:
    """A project's own ``postgres`` and ``local_aws`` fixtures win untouched beside the plugin's."""
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def postgres():
            return "the project's own database"

        @pytest.fixture
        def local_aws():
            return "the project's own fake"
        """
    )
    pytester.makepyfile(
        test_mine="""
        def test_mine(postgres, local_aws):
            assert postgres == "the project's own database"
            assert local_aws == "the project's own fake"
        """
    )
    assert sorted(_plugin_fixtures(pytester)) == sorted(PUBLIC)
    pytester.runpytest().assert_outcomes(passed=1)


def test_this_suites_aliases_are_the_plugin_fixture(
    local_aws: LocalAws, kmsenvelope_local_aws: LocalAws, kmsenvelope_local_aws_server: LocalAws
) -> None:
    assert local_aws is kmsenvelope_local_aws is kmsenvelope_local_aws_server
    local_aws.inject_fault("Decrypt", "ThrottlingException")
    assert local_aws.pending_faults()  # reset after the test by the plugin fixture
