"""Where a bulk job keeps its progress, so a job started again resumes where each task stopped.

A task saves its state (``LastEvaluatedKey``, last primary key or continuation token, and whether it
finished) after every page it completes; a task that starts loads its own state first. A resumed task
re-reads at most the page it was in when it stopped; the items of that page it had already written are
in the target state by then and are skipped, so nothing is written twice.

Two stores: :class:`FileCheckpoint` (a local file: an append-only JSON-lines log, so concurrent
processes on one machine can share it) and :class:`DynamoDbCheckpoint` (a DynamoDB table, for workers
on many machines). Anything with the :class:`Checkpoint` methods that pickles works too.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigurationError
from .clients import ClientRecipe, client_source

__all__ = ["Checkpoint", "DynamoDbCheckpoint", "FileCheckpoint", "decode_key", "encode_key", "resolve"]

State = dict[str, Any]


@runtime_checkable
class Checkpoint(Protocol):
    """Per-task progress of jobs, by job name and task number. Implementations must pickle."""

    def load(self, job: str) -> dict[int, State]:
        """The latest saved state of every task of ``job``."""
        ...

    def save(self, job: str, task: int, state: State) -> None:
        """Record ``state`` as task ``task``'s progress (durably, before returning)."""
        ...

    def reset(self, job: str) -> None:
        """Forget every task's state of ``job`` (a finished job starts over from the beginning)."""
        ...


class FileCheckpoint:
    """Progress in a local file (JSON lines, appended with one ``write`` each and fsynced).

    Shared safely by processes on one machine (a process pool, a ``LocalCluster``); workers on other
    machines need a shared file system or a :class:`DynamoDbCheckpoint`. A line torn by a crash is
    ignored, which loses at most that task's last page of progress.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def load(self, job: str) -> dict[int, State]:
        states: dict[int, State] = {}
        try:
            with open(self.path, encoding="utf-8") as handle:
                lines = handle.readlines()
        except FileNotFoundError:
            return states
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn last line
            if not isinstance(entry, dict) or entry.get("job") != job:
                continue
            if entry.get("reset"):
                states.clear()
            elif isinstance(entry.get("task"), int) and isinstance(entry.get("state"), dict):
                states[entry["task"]] = entry["state"]
        return states

    def save(self, job: str, task: int, state: State) -> None:
        self._append({"job": job, "task": task, "state": state})

    def reset(self, job: str) -> None:
        self._append({"job": job, "reset": True})

    def _append(self, entry: Mapping[str, Any]) -> None:
        # Each entry starts a new line, so one torn by a crash never swallows the next.
        data = ("\n" + json.dumps(entry, sort_keys=True)).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)  # one O_APPEND write: lines of concurrent writers never interleave
            os.fsync(fd)
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"FileCheckpoint({self.path!r})"


class DynamoDbCheckpoint:
    """Progress in a DynamoDB table (partition key ``job`` (S), sort key ``task`` (N)).

    ``client`` is a boto3 DynamoDB client or a zero-argument callable returning one (default: a client
    from the worker's default session). :meth:`create_table` creates the table (on-demand billing).
    """

    def __init__(self, table: str, client: Any = None) -> None:
        if not isinstance(table, str) or not table:
            raise ConfigurationError("DynamoDbCheckpoint needs a table name")
        self.table = table
        self._source = (
            client_source(client, "dynamodb") if client is not None else ClientRecipe("dynamodb", None)
        )
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"table": self.table, "_source": self._source, "_client": None}

    def _ddb(self) -> Any:
        if self._client is None:
            self._client = self._source()
        return self._client

    def create_table(self) -> None:
        """Create the checkpoint table and wait until it is active."""
        client = self._ddb()
        client.create_table(
            TableName=self.table,
            KeySchema=[
                {"AttributeName": "job", "KeyType": "HASH"},
                {"AttributeName": "task", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "job", "AttributeType": "S"},
                {"AttributeName": "task", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.get_waiter("table_exists").wait(TableName=self.table)

    def load(self, job: str) -> dict[int, State]:
        states: dict[int, State] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#j = :j",
            "ExpressionAttributeNames": {"#j": "job"},
            "ExpressionAttributeValues": {":j": {"S": job}},
            "ConsistentRead": True,
        }
        while True:
            page = self._ddb().query(**kwargs)
            for item in page.get("Items", []):
                states[int(item["task"]["N"])] = json.loads(item["state"]["S"])
            if "LastEvaluatedKey" not in page:
                return states
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save(self, job: str, task: int, state: State) -> None:
        self._ddb().put_item(
            TableName=self.table,
            Item={
                "job": {"S": job},
                "task": {"N": str(task)},
                "state": {"S": json.dumps(state, sort_keys=True)},
            },
        )

    def reset(self, job: str) -> None:
        for task in self.load(job):
            self._ddb().delete_item(TableName=self.table, Key={"job": {"S": job}, "task": {"N": str(task)}})

    def __repr__(self) -> str:
        return f"DynamoDbCheckpoint({self.table!r})"


def resolve(checkpoint: object) -> Checkpoint | None:
    """``None``, a path (a :class:`FileCheckpoint`) or a :class:`Checkpoint`."""
    if checkpoint is None:
        return None
    if isinstance(checkpoint, (str, os.PathLike)):
        return FileCheckpoint(checkpoint)
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    raise ConfigurationError("checkpoint must be a file path, a DynamoDbCheckpoint or a Checkpoint")


def encode_key(key: Mapping[str, Mapping[str, Any]] | None) -> Any:
    """A DynamoDB key (``LastEvaluatedKey``) as JSON: binary values base64 under ``B64``."""
    if key is None:
        return None
    out = {}
    for name, value in key.items():
        ((kind, raw),) = value.items()
        out[name] = {"B64": base64.b64encode(bytes(raw)).decode("ascii")} if kind == "B" else {kind: raw}
    return out


def decode_key(key: Any) -> dict[str, dict[str, Any]] | None:
    """The inverse of :func:`encode_key`."""
    if key is None:
        return None
    out = {}
    for name, value in key.items():
        ((kind, raw),) = value.items()
        out[name] = {"B": base64.b64decode(raw)} if kind == "B64" else {kind: raw}
    return out
