"""One task of :func:`~kmsenvelope.bulk.migrate_table`: one parallel-scan segment of the table.

:func:`migrate_segment` is a plain function of one picklable :class:`SegmentTask`, so it runs in the
calling process, in a process pool, as a Dask task or inside Spark's ``mapPartitions``.

Every write is an ``UpdateItem`` conditional on the item still being what was read:

* new-format items: ``aws_dbe_head`` and ``aws_dbe_foot`` unchanged (they change on every write);
* legacy items: the legacy signature and material description unchanged;
* plaintext items: every attribute unchanged, and still no ``aws_dbe_head``;
* always: the item still exists, every attribute the write changes or removes still has the value
  read, and every attribute the new signature covers but the old one did not is unchanged.

Attributes the write does not touch and the new item does not sign (e.g. a counter allowed unsigned
that someone increments meanwhile) are left to concurrent writers. A failed condition re-reads the
item (consistently) and starts over with it: it may now be in the target state and skipped.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..aws.accounting import stats as kms_stats
from ..errors import ConfigurationError, KmsEnvelopeError
from ..structured.model import FOOTER_FIELD, HEADER_FIELD, Action
from .checkpoint import Checkpoint, decode_key, encode_key
from .clients import ClientSource
from .report import TaskTally
from .targets import ConfigRecipe, fingerprints
from .throttle import Backoff, RateLimiter, count_throttling, error_code

__all__ = ["SegmentTask", "migrate_segment"]

Item = Mapping[str, Any]
NEW, LEGACY, PLAINTEXT = "new", "legacy", "plaintext"


@dataclass(frozen=True)
class SegmentTask:
    """Everything one segment's worker needs; pickles (keyrings as described in ``docs/bulk.md``)."""

    job: str
    table_name: str
    client: ClientSource
    sources: tuple[ConfigRecipe, ...]
    target: ConfigRecipe
    segment: int
    total_segments: int
    target_keys: frozenset[tuple[Any, ...]]
    rewrap: bool
    checkpoint: Checkpoint | None = None
    rate: float | None = None
    dry_run: bool = False
    verify: bool = False
    page_size: int = 100
    backoff_base: float = 0.05
    max_conflicts: int = 20
    kms_per_item: tuple[tuple[str, int], ...] = ()
    """Estimated KMS calls per item by what happens to it (``rewrap``, ``new``, ``legacy``, ``plaintext``)."""


class _Conflict(Exception):
    """The item changed between read and write."""


def migrate_segment(task: SegmentTask) -> TaskTally:
    """Migrate the items of one scan segment; returns what was done. Saves progress after each page."""
    tally = TaskTally()
    client = task.client()
    unhook = count_throttling(client, "dynamodb", tally)
    backoff = Backoff(tally, base=task.backoff_base)
    backoff.client_counts_throttling = True
    before = kms_stats()
    try:
        state = None
        if task.checkpoint is not None and not task.dry_run:
            state = task.checkpoint.load(task.job).get(task.segment)
        if state is not None and state.get("done"):
            return tally
        start_key = decode_key(state.get("last_key")) if state is not None else None
        migrator = _Migrator(task, client, tally, backoff)
        limiter = RateLimiter(task.rate)
        while True:
            params: dict[str, Any] = {
                "TableName": task.table_name,
                "Segment": task.segment,
                "TotalSegments": task.total_segments,
                "ConsistentRead": True,
                "Limit": task.page_size,
            }
            if start_key is not None:
                params["ExclusiveStartKey"] = start_key
            page = backoff.call(client.scan, **params)
            for stored in page.get("Items", []):
                limiter.acquire()
                migrator.process(stored)
            start_key = page.get("LastEvaluatedKey")
            if task.checkpoint is not None and not task.dry_run:
                progress = {"done": start_key is None, "last_key": encode_key(start_key),
                            "segments": task.total_segments}  # fmt: skip
                task.checkpoint.save(task.job, task.segment, progress)
            if start_key is None:
                return tally
    finally:
        unhook()
        after = kms_stats()
        tally.kms_calls += after.calls - before.calls
        tally.retries += max(0, (after.attempts - before.attempts) - (after.calls - before.calls))


class _Migrator:
    def __init__(self, task: SegmentTask, client: Any, tally: TaskTally, backoff: Backoff) -> None:
        from ..dynamodb.encryptor import ItemEncryptor

        self.task = task
        self.client = client
        self.tally = tally
        self.backoff = backoff
        self.sources = [recipe.build() for recipe in task.sources]
        self.decryptors = [ItemEncryptor(config) for config in self.sources]
        self.target = task.target.build()
        self.encryptor = ItemEncryptor(self.target)
        first = self.sources[0]
        self.keys = tuple(k for k in (first.partition_key, first.sort_key) if k is not None)
        # Which source reads which format: the first with a legacy config reads legacy items, the first
        # whose plaintext policy allows it plaintext ones, the first of all new-format ones.
        self.legacy_index = next((i for i, c in enumerate(self.sources) if c.legacy is not None), None)
        self.plaintext_index = next(
            (
                i
                for i, c in enumerate(self.sources)
                if c.plaintext_policy is not None and c.plaintext_policy.allows_read
            ),
            0,
        )
        legacy = self.sources[self.legacy_index].legacy if self.legacy_index is not None else None
        self.legacy_names = (
            (legacy.material_description_attribute, legacy.signature_attribute)
            if legacy is not None
            else None
        )
        self.kms_per_item = dict(task.kms_per_item)

    def source_index(self, kind: str) -> int:
        if kind == LEGACY:
            if self.legacy_index is None:
                raise ConfigurationError("a legacy item was found, but no source config has a legacy config")
            return self.legacy_index
        return self.plaintext_index if kind == PLAINTEXT else 0

    def process(self, stored: Item) -> None:
        tally = self.tally
        tally.read += 1
        tally.saw(self.detect(stored))  # as read by the scan (a re-read after a conflict is not counted)
        key = self.key_text(stored)
        throttled = 0
        conflicts = 0
        while True:
            try:
                self.once(stored)
                return
            except _Conflict:
                tally.conflicts += 1
                conflicts += 1
                fresh = self.backoff.call(
                    self.client.get_item,
                    TableName=self.task.table_name,
                    Key=self.key_of(stored),
                    ConsistentRead=True,
                ).get("Item")
                if fresh is None:
                    tally.skipped += 1  # deleted meanwhile: nothing left to migrate
                    return
                if conflicts > self.task.max_conflicts:
                    tally.fail(key, f"the item kept changing during the job ({conflicts} conflicting writes)")
                    return
                stored = fresh
            except Exception as exc:
                if self.backoff.should_retry(exc, throttled):
                    throttled += 1
                    continue
                if not item_error(exc):
                    raise  # the job's own trouble (connection lost, a bug): stop; the checkpoint holds
                tally.fail(key, describe(exc))
                return

    def once(self, stored: Item) -> None:
        task, tally = self.task, self.tally
        kind = self.detect(stored)
        rewrap = False
        if kind == NEW:
            header = self.header(stored)
            if header is not None and fingerprints(header.encrypted_data_keys, True) & task.target_keys:
                tally.skipped += 1
                return
            rewrap = task.rewrap and header is not None and header.suite is self.target.effective_suite
        if task.dry_run:
            tally.estimated_kms_calls += self.kms_per_item.get("rewrap" if rewrap else kind, 0)
            if rewrap:
                tally.rewrapped += 1
            else:
                tally.reencrypted += 1
            return
        plain: dict[str, Any] | None = None
        decryptor = self.decryptors[self.source_index(kind)]
        if rewrap:
            suite = self.target.effective_suite
            new_item = decryptor.rewrap_item(stored, self.target.keyring, resign=suite.signing)
        else:
            plain, _found = decryptor.decrypt_item_with_format(stored)
            new_item = self.encryptor.encrypt_item(plain)
        self.write(stored, new_item, kind)
        tally.written += 1
        if rewrap:
            tally.rewrapped += 1
        else:
            tally.reencrypted += 1
        if task.verify:
            self.check(new_item, plain)

    def detect(self, item: Item) -> str:
        names = self.legacy_names
        if names is not None and names[0] in item and names[1] in item:
            return LEGACY
        if HEADER_FIELD not in item and FOOTER_FIELD not in item:
            return PLAINTEXT
        return NEW

    @staticmethod
    def header(item: Item) -> Any:
        from ..structured.header import parse_header

        value = item.get(HEADER_FIELD)
        raw = value.get("B") if isinstance(value, Mapping) else None
        if not isinstance(raw, (bytes, bytearray)):
            return None
        try:
            return parse_header(bytes(raw))
        except KmsEnvelopeError:
            return None  # decryption will report what is wrong with it

    def covered(self, stored: Item, kind: str) -> frozenset[str]:
        """Attributes whose values the stored item's own authentication token covers."""
        source = self.sources[self.source_index(kind)]
        if kind == NEW:
            return frozenset(n for n in stored if not source.allowed_unsigned_name(n))
        if kind == LEGACY:
            legacy = source.legacy
            if legacy is None:
                raise ConfigurationError("a legacy item was found, but its source has no legacy config")
            return frozenset(n for n in stored if legacy.actions.get(n) is not Action.DO_NOTHING)
        return frozenset()

    def write(self, stored: Item, new_item: Item, kind: str) -> None:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}

        def name(attribute: str) -> str:
            alias = f"#a{len(names)}"
            names[alias] = attribute
            return alias

        def value(content: Any) -> str:
            alias = f":v{len(values)}"
            values[alias] = content
            return alias

        sets = [n for n, v in new_item.items() if n not in self.keys and stored.get(n) != v]
        removes = [n for n in stored if n not in new_item and n not in self.keys]
        covered = self.covered(stored, kind)
        tokens = {NEW: (HEADER_FIELD, FOOTER_FIELD), LEGACY: self.legacy_names or (), PLAINTEXT: ()}[kind]
        conditions = [f"attribute_exists({name(self.keys[0])})"]
        changed = set(sets) | set(removes)
        for attribute in stored:
            if attribute in self.keys:
                continue
            signed_now = not self.target.allowed_unsigned_name(attribute)
            if attribute in tokens or attribute in changed or (signed_now and attribute not in covered):
                conditions.append(f"{name(attribute)} = {value(stored[attribute])}")
        for attribute in sets:
            if attribute not in stored:
                conditions.append(f"attribute_not_exists({name(attribute)})")
        clauses = []
        if sets:
            clauses.append("SET " + ", ".join(f"{name(n)} = {value(new_item[n])}" for n in sets))
        if removes:
            clauses.append("REMOVE " + ", ".join(name(n) for n in removes))
        if not clauses:
            return
        params: dict[str, Any] = {
            "TableName": self.task.table_name,
            "Key": self.key_of(stored),
            "UpdateExpression": " ".join(clauses),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
        }
        if values:
            params["ExpressionAttributeValues"] = values
        try:
            self.backoff.call(self.client.update_item, **params)
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise _Conflict from None
            raise

    def check(self, written: Item, plain: Mapping[str, Any] | None) -> None:
        """Read the written item back and decrypt it under the target (``verify=True``)."""
        from ..dynamodb.legacy import ItemFormat

        fresh = self.backoff.call(
            self.client.get_item,
            TableName=self.task.table_name,
            Key=self.key_of(written),
            ConsistentRead=True,
        ).get("Item")
        if fresh is None or fresh.get(HEADER_FIELD) != written.get(HEADER_FIELD):
            return  # deleted or rewritten by someone else since: not ours to verify
        got, found = self.encryptor.decrypt_item_with_format(fresh)
        if found is not ItemFormat.NEW:
            raise KmsEnvelopeError("verify: the written item does not read back in the new format")
        if plain is not None and got != plain:
            raise KmsEnvelopeError("verify: the written item decrypts to something else than was read")
        self.tally.verified += 1

    def key_of(self, item: Item) -> dict[str, Any]:
        return {k: item[k] for k in self.keys}

    def key_text(self, item: Item) -> str:
        out = {}
        for k in self.keys:
            value = item.get(k, {})
            out[k] = {t: base64.b64encode(bytes(v)).decode() if t == "B" else v for t, v in value.items()}
        return json.dumps(out, sort_keys=True)


def item_error(exc: BaseException) -> bool:
    """Whether ``exc`` concerns one item (it cannot be decrypted, encrypted or written), not the job."""
    return isinstance(exc, KmsEnvelopeError) or (
        error_code(exc) is not None and error_code(exc) not in _JOB_ERRORS
    )


_JOB_ERRORS = frozenset({"ResourceNotFoundException", "AccessDeniedException", "UnrecognizedClientException"})


def describe(exc: BaseException) -> str:
    """A failure reason without values: kmsenvelope's own messages (which name attributes and keys,
    never values), else the AWS error code or exception type."""
    if isinstance(exc, KmsEnvelopeError):
        return f"{type(exc).__name__}: {exc}"[:500]
    code = error_code(exc)
    return code if code is not None else type(exc).__name__
