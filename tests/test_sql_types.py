"""EncryptedType on a real PostgreSQL: round trips, NULLs, type checks, ESDK interop, tampering."""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import math
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import aws_encryption_sdk
import pytest
from aws_encryption_sdk.identifiers import EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKey
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    create_engine,
    insert,
    select,
    text,
    type_coerce,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from kmsenvelope import Envelope, RawAesKeyring
from kmsenvelope.errors import (
    AuthenticationError,
    ConfigurationError,
    KmsEnvelopeError,
    MalformedInputError,
    NoUsableKeyError,
    PolicyError,
)
from kmsenvelope.sql import COLUMN_KEY, TABLE_KEY, ColumnEncryptionError, EncryptedType, EncryptedValueError

KEY = bytes(range(32))
ENVELOPE = Envelope(RawAesKeyring("sql-tests", "column-key", KEY))
_names = itertools.count()

VALUES: dict[str, tuple[Any, Any]] = {
    "s": (str, "Zoë \u2603 O'Brien"),
    "b": (bytes, b"\x00\x01binary\xff"),
    "i": (int, -(2**80) + 7),
    "f": (float, -0.0),
    "d": (decimal.Decimal, decimal.Decimal("12345.6700")),
    "t": (bool, True),
    "dd": (dt.date, dt.date(1969, 7, 20)),
    "naive": (dt.datetime, dt.datetime(2024, 2, 29, 12, 0, 0, 1)),
    "aware": (dt.datetime, dt.datetime(2024, 3, 31, 1, 59, tzinfo=ZoneInfo("Europe/Paris"))),
    "offset": (dt.datetime, dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=9, minutes=30)))),
    "u": (uuid.UUID, uuid.uuid4()),
    "j": ("json", {"list": [1, 2.5, None], "ok": True, "name": "x"}),
    "jd": (dict, {"a": {"b": "c"}}),
    "jl": (list, ["x", 1, {"y": None}]),
}


def _name(prefix: str) -> str:
    return f"{prefix}_{next(_names)}_{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def engine(postgres: str) -> Iterator[Engine]:
    eng = create_engine(postgres)
    yield eng
    eng.dispose()


@pytest.fixture
def metadata(engine: Engine) -> Iterator[MetaData]:
    md = MetaData()
    yield md
    md.drop_all(engine)


def _raw(engine: Engine, table: Table, column: str, row_id: int) -> bytes | None:
    with engine.connect() as conn:
        value = conn.execute(
            select(type_coerce(table.c[column], LargeBinary)).where(table.c.id == row_id)
        ).scalar_one()
    return None if value is None else bytes(value)


def test_every_value_type_round_trips_and_none_stays_null(engine: Engine, metadata: MetaData) -> None:
    table = Table(
        _name("types"), metadata, Column("id", Integer, primary_key=True),
        *[Column(key, EncryptedType(vt, ENVELOPE), nullable=True) for key, (vt, _) in VALUES.items()],
    )
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"id": 1, **{k: v for k, (_, v) in VALUES.items()}},
                                     {"id": 2, **dict.fromkeys(VALUES)}])
    with engine.connect() as conn:
        full, empty = conn.execute(select(table).order_by(table.c.id)).all()
        ddl_type = conn.execute(text(
            "SELECT data_type FROM information_schema.columns WHERE table_name = :t AND column_name = 's'"
        ), {"t": table.name}).scalar_one()
    assert ddl_type == "bytea"
    for key, (_, value) in VALUES.items():
        got = full._mapping[key]
        assert type(got) is type(value), key
        if isinstance(value, float):
            assert math.copysign(1.0, got) == -1.0
        elif isinstance(value, decimal.Decimal):
            assert str(got) == str(value)
        else:
            assert got == value, key
        assert empty._mapping[key] is None
        assert _raw(engine, table, key, 2) is None  # SQL NULL, not an encrypted null
    aware = full._mapping["aware"]
    assert aware.tzinfo == ZoneInfo("Europe/Paris") and aware.utcoffset() == dt.timedelta(hours=1)
    assert full._mapping["offset"].utcoffset() == dt.timedelta(hours=9, minutes=30)


def test_encrypt_null_stores_an_authenticated_null(engine: Engine, metadata: MetaData) -> None:
    table = Table(
        _name("nulls"), metadata, Column("id", Integer, primary_key=True),
        Column("v", EncryptedType(str, ENVELOPE, encrypt_null=True), nullable=True),
    )
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"id": 1, "v": None}, {"id": 2, "v": "x"}])
    raw = _raw(engine, table, "v", 1)
    assert raw is not None and ENVELOPE.decrypt(raw) == b"\x00"
    with engine.connect() as conn:
        assert conn.execute(select(table.c.v).where(table.c.id == 1)).scalar_one() is None
    with engine.begin() as conn:  # an attacker with SQL access sets a plain NULL
        conn.execute(table.update().where(table.c.id == 2).values(v=type_coerce(None, LargeBinary)))
    with engine.connect() as conn, pytest.raises(AuthenticationError, match="unencrypted NULL"):
        conn.execute(select(table.c.v).where(table.c.id == 2)).scalar_one()


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = _name("people")
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(EncryptedType(str, ENVELOPE))
    born: Mapped[dt.date | None] = mapped_column(EncryptedType(dt.date, ENVELOPE), nullable=True)


@pytest.fixture
def people(engine: Engine) -> Iterator[None]:
    Base.metadata.create_all(engine)
    yield
    Base.metadata.drop_all(engine)


def test_orm_round_trip_and_wrong_types(engine: Engine, people: None) -> None:
    with Session(engine) as session:
        session.add(Person(name="Ada", born=dt.date(1815, 12, 10)))
        session.commit()
        session.add(Person(name=12345))
        with pytest.raises(EncryptedValueError) as info:
            session.commit()
        session.rollback()
        assert isinstance(info.value, MalformedInputError) and "12345" not in str(info.value)
        assert "expected a str value, got int" in str(info.value)
    with engine.connect() as conn:
        with pytest.raises(MalformedInputError):
            conn.execute(insert(Person).values(id=9, name="ok", born=dt.datetime(2020, 1, 1)))
        conn.rollback()
    with Session(engine) as session:
        found = session.scalars(select(Person)).all()
        assert [(p.name, p.born) for p in found] == [("Ada", dt.date(1815, 12, 10))]


def _esdk_key() -> RawMasterKey:
    return RawMasterKey(
        provider_id="sql-tests",
        key_id=b"column-key",
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=KEY,
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        ),
    )


def test_aws_encryption_sdk_decrypts_the_column_bytes(engine: Engine, people: None) -> None:
    with Session(engine) as session:
        person = Person(name="Grace Hopper")
        session.add(person)
        session.commit()
        person_id = person.id
    raw = _raw(engine, Person.__table__, "name", person_id)  # type: ignore[arg-type]
    assert raw is not None
    client = aws_encryption_sdk.EncryptionSDKClient()
    plaintext, header = client.decrypt(source=raw, key_provider=_esdk_key())
    assert plaintext == b"\x01" + b"Grace Hopper"  # tag 0x01 (str) + UTF-8
    assert header.encryption_context[TABLE_KEY] == Person.__tablename__
    assert header.encryption_context[COLUMN_KEY] == "name"


def test_ciphertext_moved_to_another_column_or_table_fails(engine: Engine, metadata: MetaData) -> None:
    first = Table(_name("src"), metadata, Column("id", Integer, primary_key=True),
                  Column("a", EncryptedType(str, ENVELOPE)), Column("b", EncryptedType(str, ENVELOPE)))
    second = Table(_name("dst"), metadata, Column("id", Integer, primary_key=True),
                   Column("a", EncryptedType(str, ENVELOPE)), Column("b", EncryptedType(str, ENVELOPE)))
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(first), [{"id": 1, "a": "alpha", "b": "beta"}, {"id": 2, "a": "x", "b": "y"}])
        conn.execute(insert(second), [{"id": 1, "a": "q", "b": "r"}])
        conn.execute(text(f'UPDATE "{first.name}" SET b = a WHERE id = 1'))
        conn.execute(text(f'UPDATE "{second.name}" SET a = (SELECT a FROM "{first.name}" WHERE id = 2)'))
    with engine.connect() as conn:
        assert conn.execute(select(first.c.a).where(first.c.id == 1)).scalar_one() == "alpha"
        with pytest.raises(KmsEnvelopeError, match="encryption context"):
            conn.execute(select(first.c.b).where(first.c.id == 1)).scalar_one()
        with pytest.raises(KmsEnvelopeError, match="encryption context"):
            conn.execute(select(second.c.a)).scalar_one()
        # Documented trade-off: EncryptedType binds table and column, not the row.
        copy_row = f'UPDATE "{first.name}" SET a = (SELECT a FROM "{first.name}" WHERE id = 1) WHERE id = 2'
        conn.execute(text(copy_row))
        assert conn.execute(select(first.c.a).where(first.c.id == 2)).scalar_one() == "alpha"


@pytest.mark.parametrize("where", ["message id", "header tag", "body"])
def test_edited_bytes_fail_to_authenticate(engine: Engine, metadata: MetaData, where: str) -> None:
    table = Table(_name("edit"), metadata, Column("id", Integer, primary_key=True),
                  Column("v", EncryptedType(str, ENVELOPE)))
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table).values(id=1, v="sensitive"))
    raw = bytearray(_raw(engine, table, "v", 1) or b"")
    header = ENVELOPE.parse_header(bytes(raw))
    position = {"message id": 5, "header tag": header.size - 1, "body": header.size + 10}[where]
    raw[position] ^= 0x01
    with engine.begin() as conn:
        conn.execute(table.update().values(v=type_coerce(bytes(raw), LargeBinary)))
    with engine.connect() as conn, pytest.raises(AuthenticationError):
        conn.execute(select(table.c.v)).scalar_one()


def test_one_instance_per_column_and_mixin_copies(engine: Engine) -> None:
    shared = EncryptedType(str, ENVELOPE)
    Column("a", shared)
    with pytest.raises(ConfigurationError, match="one EncryptedType per column"):
        Column("b", shared)

    class MixBase(DeclarativeBase):
        pass

    class Secret:
        secret: Mapped[str] = mapped_column(EncryptedType(str, ENVELOPE))

    class One(Secret, MixBase):
        __tablename__ = _name("one")
        id: Mapped[int] = mapped_column(primary_key=True)

    class Two(Secret, MixBase):
        __tablename__ = _name("two")
        id: Mapped[int] = mapped_column(primary_key=True)

    one_type = One.__table__.c.secret.type
    two_type = Two.__table__.c.secret.type
    assert isinstance(one_type, EncryptedType) and isinstance(two_type, EncryptedType)
    assert one_type.encryption_context[TABLE_KEY] == One.__tablename__
    assert two_type.encryption_context[TABLE_KEY] == Two.__tablename__
    data = one_type.encrypt_value("mixin")
    assert one_type.decrypt_value(data) == "mixin"
    with pytest.raises(KmsEnvelopeError):
        two_type.decrypt_value(data)


def test_comparisons_without_beacon_and_bad_configuration_are_refused() -> None:
    with pytest.raises(PolicyError):
        Person.name == "x"  # noqa: B015
    with pytest.raises(PolicyError):
        Person.name != "x"  # noqa: B015
    with pytest.raises(PolicyError):
        Person.name > "x"  # noqa: B015
    with pytest.raises(PolicyError):
        Person.name.like("x%")
    assert "IS NULL" in str(select(Person).where(Person.born == None))  # noqa: E711
    with pytest.raises(ConfigurationError, match="reserved"):
        EncryptedType(str, ENVELOPE, context={TABLE_KEY: "spoofed"})
    with pytest.raises(ConfigurationError, match="reserved"):
        EncryptedType(str, ENVELOPE, context={"aws-crypto-public-key": "x"})
    with pytest.raises(ConfigurationError, match="unsupported value_type"):
        EncryptedType(complex, ENVELOPE)
    with pytest.raises(ConfigurationError, match="not attached"):
        EncryptedType(str, ENVELOPE).encrypt_value("x")


def test_user_context_is_bound(engine: Engine, metadata: MetaData) -> None:
    tenant_a = EncryptedType(str, ENVELOPE, context={"tenant": "a"})
    table = Table(_name("ctx"), metadata, Column("id", Integer, primary_key=True), Column("v", tenant_a))
    other = EncryptedType(str, ENVELOPE, context={"tenant": "b"})
    Table(table.name, MetaData(), Column("id", Integer, primary_key=True), Column("v", other))
    data = tenant_a.encrypt_value("a's secret")
    assert ENVELOPE.parse_header(data or b"").encryption_context["tenant"] == "a"
    with pytest.raises(KmsEnvelopeError):
        other.decrypt_value(data)


class _BrokenKeyring:
    """A keyring whose key provider is down."""

    def on_encrypt(self, materials: Any) -> Any:
        raise NoUsableKeyError("key provider unavailable")

    def on_decrypt(self, materials: Any, edks: Any) -> Any:
        raise NoUsableKeyError("key provider unavailable")


def test_encryption_failures_do_not_put_plaintexts_in_errors(engine: Engine, metadata: MetaData) -> None:
    table = Table(_name("broken"), metadata, Column("id", Integer, primary_key=True),
                  Column("v", EncryptedType(str, Envelope(_BrokenKeyring()))))
    metadata.create_all(engine)
    with engine.begin() as conn, pytest.raises(ColumnEncryptionError) as info:
        conn.execute(insert(table).values(id=1, v="4111-1111-1111-1111"))
    assert isinstance(info.value, StatementError) and isinstance(info.value, KmsEnvelopeError)
    assert isinstance(info.value.orig, NoUsableKeyError)
    assert "4111" not in str(info.value) and "key provider unavailable" in str(info.value)
