"""Row mode (EncryptedColumns, DB-ESDK structured encryption) on a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from kmsenvelope import RawAesKeyring
from kmsenvelope.errors import AuthenticationError, KmsEnvelopeError, MalformedInputError, PolicyError
from kmsenvelope.sql import EncryptedColumns
from kmsenvelope.structured import parse_header

KEYRING = RawAesKeyring("sql-tests", "row-key", bytes(range(32, 64)))
VALUES: dict[str, tuple[Any, Any]] = {
    "s": (str, "row mode \u00e9"),
    "b": (bytes, b"\x00\xff"),
    "i": (int, 2**65),
    "f": (float, 2.5),
    "d": (decimal.Decimal, decimal.Decimal("-0.000100")),
    "t": (bool, False),
    "dd": (dt.date, dt.date(2000, 2, 29)),
    "ts": (dt.datetime, dt.datetime(2024, 7, 1, 9, 30, tzinfo=ZoneInfo("America/New_York"))),
    "u": (uuid.UUID, uuid.uuid4()),
    "j": ("json", [{"a": 1}, None, "z"]),
}


@pytest.fixture(scope="module")
def engine(postgres: str) -> Iterator[Engine]:
    eng = create_engine(postgres)
    yield eng
    eng.dispose()


@pytest.fixture
def core(engine: Engine) -> Iterator[tuple[Table, EncryptedColumns]]:
    rows = EncryptedColumns(KEYRING, context={"app": "tests"})
    md = MetaData()
    table = Table(
        f"rowcore_{uuid.uuid4().hex[:8]}", md, Column("id", Integer, primary_key=True),
        *[rows.column(key, vt, nullable=True) for key, (vt, _) in VALUES.items()],
        Column("note", String, nullable=True), rows.header_column(), rows.footer_column(),
    )
    md.create_all(engine)
    yield table, rows
    md.drop_all(engine)


def _read(engine: Engine, table: Table, rows: EncryptedColumns, row_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.id == row_id)).one()
    return rows.decrypt_row(dict(row._mapping))


def _raw(engine: Engine, table: Table, column: str, row_id: int) -> bytes | None:
    with engine.connect() as conn:
        value = conn.execute(
            select(type_coerce(table.c[column], LargeBinary)).where(table.c.id == row_id)
        ).scalar()
    return None if value is None else bytes(value)


def test_core_round_trip_of_every_type_and_nulls(
    engine: Engine, core: tuple[Table, EncryptedColumns]
) -> None:
    table, rows = core
    full = {"id": 1, "note": "plain", **{k: v for k, (_, v) in VALUES.items()}}
    sparse = {"id": 2, "note": None, **dict.fromkeys(VALUES)}
    with engine.begin() as conn:
        conn.execute(insert(table), [rows.encrypt_row(full), rows.encrypt_row(sparse)])
    assert _read(engine, table, rows, 1) == {k: v for k, (_, v) in VALUES.items()}
    assert _read(engine, table, rows, 2) == dict.fromkeys(VALUES)
    assert _raw(engine, table, "s", 2) is None  # NULL stays NULL ...
    # ... and each encrypted column costs 18 bytes: 2-byte type id + 16-byte tag.
    assert len(_raw(engine, table, "s", 1) or b"") == len(VALUES["s"][1].encode()) + 18
    assert len(_raw(engine, table, "u", 1) or b"") == 16 + 18
    header = parse_header(_raw(engine, table, "aws_dbe_head", 1) or b"")
    assert dict(header.stored_context) == {"app": "tests"}  # table name bound but not stored
    with engine.begin() as conn, pytest.raises(PolicyError, match="written by EncryptedColumns"):
        conn.execute(insert(table).values(id=3, s="plaintext would leak"))


def _tamper(engine: Engine, table: Table, sql: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql.format(t=f'"{table.name}"')))


@pytest.mark.parametrize(
    "attack",
    [
        "UPDATE {t} SET s = (SELECT s FROM {t} WHERE id = 2) WHERE id = 1",  # value from another row
        "UPDATE {t} SET s = (SELECT i FROM {t} WHERE id = 1) WHERE id = 1",  # another column's value
        "UPDATE {t} SET (s, i, aws_dbe_head, aws_dbe_foot) = "
        "(SELECT s, i, aws_dbe_head, aws_dbe_foot FROM {t} WHERE id = 2) WHERE id = 1",  # a whole row moved
        "UPDATE {t} SET aws_dbe_head = set_byte(aws_dbe_head, 40, get_byte(aws_dbe_head, 40) # 1) "
        "WHERE id = 1",
        "UPDATE {t} SET aws_dbe_foot = set_byte(aws_dbe_foot, 3, get_byte(aws_dbe_foot, 3) # 1) "
        "WHERE id = 1",
        "UPDATE {t} SET i = NULL WHERE id = 1",  # dropping a value
        "UPDATE {t} SET s = set_byte(s, 5, get_byte(s, 5) # 1) WHERE id = 1",
        "UPDATE {t} SET id = 3 WHERE id = 1",  # the row under another primary key
    ],
    ids=["other-row", "other-column", "whole-row", "header", "footer", "nulled", "ciphertext", "new-key"],
)
def test_tampering_is_detected(engine: Engine, core: tuple[Table, EncryptedColumns], attack: str) -> None:
    table, rows = core
    with engine.begin() as conn:
        conn.execute(insert(table), [rows.encrypt_row({"id": n, "s": f"secret {n}", "i": n}) for n in (1, 2)])
    assert _read(engine, table, rows, 1)["s"] == "secret 1"
    _tamper(engine, table, attack)
    row_id = 3 if "id = 3" in attack else 1
    with pytest.raises((AuthenticationError, MalformedInputError, KmsEnvelopeError)):
        _read(engine, table, rows, row_id)
    assert _read(engine, table, rows, 2)["s"] == "secret 2"


class Base(DeclarativeBase):
    pass


ORM_ROWS = EncryptedColumns(KEYRING)


class Patient(Base):
    __tablename__ = f"patients_{uuid.uuid4().hex[:8]}"
    id: Mapped[int] = mapped_column(primary_key=True)  # a serial: fetched before INSERT
    name: Mapped[str] = ORM_ROWS.mapped_column(str)
    dob: Mapped[dt.date | None] = ORM_ROWS.mapped_column(dt.date, nullable=True)
    notes: Mapped[dict[str, Any] | None] = ORM_ROWS.mapped_column(dict, nullable=True)
    ward: Mapped[str | None]
    enc_head: Mapped[bytes | None] = ORM_ROWS.mapped_header()
    enc_foot: Mapped[bytes | None] = ORM_ROWS.mapped_footer()


@pytest.fixture
def patients(engine: Engine) -> Iterator[None]:
    Base.metadata.create_all(engine)
    yield
    Base.metadata.drop_all(engine)


def test_orm_insert_load_update_refresh(engine: Engine, patients: None) -> None:
    with Session(engine) as session:
        ann = Patient(name="Ann", dob=dt.date(1990, 1, 2), notes={"allergies": ["penicillin"]}, ward="A")
        bob = Patient(name="Bob")
        session.add_all([ann, bob])
        session.commit()
        assert ann.id is not None and bob.id == ann.id + 1
        assert (ann.name, ann.dob, ann.notes) == ("Ann", dt.date(1990, 1, 2), {"allergies": ["penicillin"]})
        first_header = ann.enc_head
        ann.dob = dt.date(1991, 1, 2)  # one column: the whole row is re-encrypted
        session.commit()
        assert ann.name == "Ann" and ann.dob == dt.date(1991, 1, 2)
        assert ann.enc_head != first_header
        header_before = ann.enc_head
        ann.ward = "B"  # plaintext column only: no re-encryption
        session.commit()
        assert ann.enc_head == header_before and ann.name == "Ann"
        session.expire(ann, ["name"])
        assert ann.name == "Ann"  # partial refresh reads the record from the database
        ids = (ann.id, bob.id)
    with Session(engine) as session:
        loaded = session.scalars(select(Patient).order_by(Patient.id)).all()
        assert [(p.id, p.name, p.dob, p.ward) for p in loaded] == [
            (ids[0], "Ann", dt.date(1991, 1, 2), "B"), (ids[1], "Bob", None, None)
        ]
    with engine.begin() as conn:  # swap the two rows' name ciphertexts behind the ORM's back
        table = Patient.__table__
        assert isinstance(table, Table)
        stored = conn.execute(select(table.c.id, type_coerce(table.c.name, LargeBinary)))
        names: dict[int, bytes] = {row_id: raw for row_id, raw in stored}
        for row_id, other in zip(ids, reversed(ids), strict=True):
            conn.execute(update(table).where(table.c.id == row_id)
                         .values(name=type_coerce(names[other], LargeBinary)))
    with Session(engine) as session, pytest.raises(KmsEnvelopeError):
        session.get(Patient, ids[0])


def test_row_mode_overhead(engine: Engine, core: tuple[Table, EncryptedColumns]) -> None:
    """Bytes added per row and per column (reported in docs/sql.md)."""
    table, rows = core
    with engine.begin() as conn:
        row = rows.encrypt_row({"id": 1, "s": "x" * 11, "i": 5, "dd": dt.date(2024, 1, 1)})
        conn.execute(insert(table), [row])
    header = _raw(engine, table, "aws_dbe_head", 1) or b""
    footer = _raw(engine, table, "aws_dbe_foot", 1) or b""
    per_column = len(_raw(engine, table, "s", 1) or b"") - 11
    print(f"\nrow mode, raw AES: header {len(header)} B, footer {len(footer)} B, per column {per_column} B")
    assert per_column == 18 and len(footer) == 48
    parsed = parse_header(header)
    assert len(parsed.encrypted_data_keys) == 1 and len(header) < 300


def test_row_mode_needs_header_and_footer_and_a_known_key() -> None:
    from sqlalchemy.orm import configure_mappers

    from kmsenvelope.errors import ConfigurationError

    group = EncryptedColumns(KEYRING)

    class Other(DeclarativeBase):
        pass

    class Headless(Other):
        __tablename__ = "headless"
        id: Mapped[int] = mapped_column(primary_key=True)
        body: Mapped[str] = group.mapped_column(str)

    with pytest.raises(ConfigurationError, match="header and footer"):
        configure_mappers()
    Other.registry.dispose()
    md = MetaData()
    rows = EncryptedColumns(KEYRING)
    Table("keyed", md, Column("id", Integer, primary_key=True), rows.column("v", str),
          rows.header_column(), rows.footer_column())
    with pytest.raises(PolicyError, match="must be known"):
        rows.encrypt_row({"v": "no key yet"})
