"""``kmsenvelope migrate dynamodb``: configs named MODULE:ATTR, a dry run, then the migration as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kmsenvelope.cli import cli
from kmsenvelope.dynamodb import ItemEncryptor
from kmsenvelope.testing import LocalAws

from ._bulk_env import scan_all
from ._dynamodb_env import create_table, person, unique

CONFIGS = """
from kmsenvelope import RawAesKeyring
from kmsenvelope.dynamodb import PlaintextPolicy
from tests._dynamodb_env import config

TABLE = {table!r}
NEW = RawAesKeyring("cli", "new", bytes(range(32)))
POLICY = PlaintextPolicy.FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ
SOURCE = config(TABLE, keyring=NEW, plaintext_policy=POLICY)

def target():
    return config(TABLE, keyring=NEW)
"""


def test_migrate_dynamodb_command(
    local_aws: LocalAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = unique("bulk-cli")
    raw = create_table(local_aws, table)
    for i in range(12):
        raw.put_item(TableName=table, Item=person(f"c{i}"))
    module = f"bulk_cli_{table.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(CONFIGS.format(table=table))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    args = ["migrate", "dynamodb", table, "--source", f"{module}:SOURCE", "--target", f"{module}:target",
            "--region", "us-east-1", "--endpoint-url", local_aws.endpoint_url]  # fmt: skip
    runner = CliRunner()
    dry = runner.invoke(cli, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "12 would be re-encrypted" in dry.output and "0 written" in dry.output
    done = runner.invoke(cli, [*args, "--json", "--verify", "--segments", "3"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert (report["items_written"], report["verified"], report["tasks"]) == (12, 12, 3)
    target = __import__(module).target()
    for item in scan_all(raw, table):
        assert ItemEncryptor(target).decrypt_item(item)["email"] == {"S": f"{item['pk']['S']}@example.com"}


def test_bad_config_names_are_usage_errors() -> None:
    result = CliRunner().invoke(cli, ["migrate", "dynamodb", "t", "--source", "nomodule", "--target", "x:y"])
    assert result.exit_code == 2 and "MODULE:ATTR" in result.output
