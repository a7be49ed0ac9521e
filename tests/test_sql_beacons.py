"""Beacon lookups on a real PostgreSQL: exact results, index use, false positives, DB-ESDK hashing."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from kmsenvelope import Envelope, RawAesKeyring, StaticBranchKeyStore
from kmsenvelope.errors import ConfigurationError, MalformedInputError, PolicyError
from kmsenvelope.primitives.kdf import Hmac, hkdf
from kmsenvelope.sql import (
    BeaconKeys,
    EncryptedType,
    beacon_column,
    exact_rows,
    install_exact_match,
    mapped_beacon,
    with_beacons,
)
from kmsenvelope.structured.beacon_hash import basic_hash

ENVELOPE = Envelope(RawAesKeyring("sql-tests", "beacon-tests", bytes(range(32))))
BEACON_KEY = hashlib.sha256(b"beacon key for tests").digest()
STORE = StaticBranchKeyStore("branch-1", "3f0c6f6e-5f4a-4f3d-9b7e-1c2d3e4f5a6b", bytes(32), BEACON_KEY)
KEYS = BeaconKeys(STORE, "branch-1")
SSNS = [f"{100 + i:03d}-{i % 90 + 10:02d}-{1000 + 7 * i:04d}" for i in range(120)]


class Base(DeclarativeBase):
    pass


class Citizen(Base):
    __tablename__ = f"citizens_{uuid.uuid4().hex[:8]}"
    id: Mapped[int] = mapped_column(primary_key=True)
    ssn: Mapped[str] = mapped_column(EncryptedType(str, ENVELOPE))
    # 3 bits: 8 buckets for 120 values, so every lookup also matches other citizens' rows.
    ssn_beacon: Mapped[str | None] = mapped_beacon("ssn", KEYS, length=3)
    name: Mapped[str]


@pytest.fixture(scope="module")
def engine(postgres: str) -> Iterator[Engine]:
    eng = create_engine(postgres)
    Base.metadata.create_all(eng)
    with Session(eng) as session:
        session.add_all(Citizen(ssn=ssn, name=f"citizen {i}") for i, ssn in enumerate(SSNS))
        session.commit()
    yield eng
    Base.metadata.drop_all(eng)
    eng.dispose()


def test_hash_matches_the_db_esdk_reference() -> None:
    # Known answers from the DB-ESDK's own Beacon.dfy test: key [1, 2], 8-bit beacon.
    reference = Hmac("sha384", bytes([1, 2]))
    assert basic_hash(reference, bytes([1, 2, 3]), 8) == "7e"
    assert basic_hash(reference, b"", 8) == "80"
    # HMAC key derivation (search-config.md) and truncation, recomputed independently.
    hmac_key = hkdf("sha512", BEACON_KEY, None, b"AWS_DBE_SCAN_BEACON" + b"ssn", 64)
    full = hmac.digest(hmac_key, SSNS[0].encode(), "sha384")[:8]
    expected = format(int.from_bytes(full, "big") & 0x7FFF, "04x")
    assert KEYS.hash("ssn", 15, SSNS[0].encode()) == expected
    assert len(KEYS.hash("ssn", 63, b"x")) == 16 and len(KEYS.hash("ssn", 1, b"x")) == 1
    with pytest.raises(ConfigurationError):
        KEYS.hash("ssn", 64, b"x")


def test_equality_goes_through_the_beacon_and_exact_match_drops_false_positives(engine: Engine) -> None:
    target = SSNS[41]
    statement = select(Citizen).where(Citizen.ssn == target)
    sql = str(statement.compile(engine))
    assert "ssn_beacon = " in sql and "ssn =" not in sql.replace("ssn_beacon", "")
    with Session(engine) as session:
        candidates = session.scalars(statement).all()
    assert len(candidates) > 1 and sum(c.ssn == target for c in candidates) == 1  # false positives exist
    factory = sessionmaker(engine)
    install_exact_match(factory)
    install_exact_match(factory)  # idempotent
    with factory() as session:
        found = session.scalars(statement).all()
        assert [c.ssn for c in found] == [target]
        assert found[0].name == "citizen 41"
        wanted = {SSNS[3], SSNS[77], "999-99-9999"}
        found_in = session.scalars(select(Citizen).where(Citizen.ssn.in_(sorted(wanted)))).all()
        assert sorted(c.ssn for c in found_in) == sorted({SSNS[3], SSNS[77]})
        # Column-only selects are filtered when the compared column is selected.
        rows = session.execute(select(Citizen.id, Citizen.ssn).where(Citizen.ssn == target)).all()
        assert [r.ssn for r in rows] == [target]
        # Combined with other criteria (AND) and ordering.
        both = session.scalars(
            select(Citizen).where(Citizen.ssn == target, Citizen.name == "citizen 41").order_by(Citizen.id)
        ).all()
        assert len(both) == 1
        assert session.scalars(select(Citizen).where(Citizen.ssn == "000-00-0000")).all() == []


def test_core_exact_rows(engine: Engine) -> None:
    table = Citizen.__table__
    statement = select(table.c.id, table.c.ssn).where(table.c.ssn == SSNS[5])
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
        assert len(rows) > 1
        assert [r.ssn for r in exact_rows(statement, list(rows))] == [SSNS[5]]
        blind = select(table.c.id).where(table.c.ssn == SSNS[5])
        with pytest.raises(ConfigurationError, match="select column 'ssn'"):
            exact_rows(blind, conn.execute(blind).all())


def test_explain_uses_the_beacon_index(engine: Engine) -> None:
    statement = select(Citizen).where(Citizen.ssn == SSNS[9])
    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
    beacon = KEYS.hash("ssn", 3, SSNS[9].encode())
    assert SSNS[9] not in str(compiled) and f"ssn_beacon = '{beacon}'" in str(compiled)
    with engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(conn.execute(text(f"EXPLAIN {compiled}")).scalars())
        conn.rollback()
    assert f"ix_{Citizen.__tablename__}_ssn_beacon" in plan and "Index" in plan


def test_beacons_follow_updates_and_core_inserts(engine: Engine) -> None:
    with Session(engine) as session:
        citizen = session.scalars(select(Citizen).where(Citizen.name == "citizen 7")).one()
        citizen.ssn = "555-55-5555"
        session.commit()
    install_exact_match(Session)
    try:
        with Session(engine) as session:
            found = session.scalars(select(Citizen).where(Citizen.ssn == "555-55-5555")).all()
            assert [c.name for c in found] == ["citizen 7"]
            assert session.scalars(select(Citizen).where(Citizen.ssn == SSNS[7])).all() == []
    finally:
        from sqlalchemy import event

        from kmsenvelope.sql.exact import _filter_orm

        event.remove(Session, "do_orm_execute", _filter_orm)

    md = MetaData()
    table = Table(f"core_{uuid.uuid4().hex[:8]}", md, Column("id", Integer, primary_key=True),
                  Column("email", EncryptedType(str, ENVELOPE)), beacon_column("email", KEYS, length=16))
    md.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(insert(table), [{"id": 1, "email": "a@example.com"},
                                         {"id": 2, "email": "b@example.com"}])
            changed = with_beacons(table, email="c@example.com")
            conn.execute(update(table).where(table.c.id == 2).values(changed))
            beacon = KEYS.hash("email", 16, b"c@example.com")
            stored = conn.execute(select(table.c.email_beacon).where(table.c.id == 2)).scalar_one()
            assert stored == beacon
            ids = list(conn.execute(select(table.c.id).where(table.c.email == "c@example.com")).scalars())
            assert ids == [2]
            count = select(func.count()).where(table.c.email == "b@example.com")
            assert conn.execute(count).scalar_one() == 0
    finally:
        md.drop_all(engine)


def test_beacon_misuse_is_refused() -> None:
    with pytest.raises(PolicyError, match="no beacon column"):
        select(Citizen).where(Citizen.name == "x", Citizen.id == 1).where(
            Table("nob", MetaData(), Column("id", Integer, primary_key=True),
                  Column("v", EncryptedType(str, ENVELOPE))).c.v == "x"
        )
    with pytest.raises(PolicyError):
        Citizen.ssn == Citizen.name  # noqa: B015
    with pytest.raises(PolicyError):
        Citizen.ssn.in_("abc")
    with pytest.raises(MalformedInputError):
        Citizen(ssn=123)
    md = MetaData()
    floats = Table("floaty", md, Column("id", Integer, primary_key=True),
                   Column("f", EncryptedType(float, ENVELOPE)), beacon_column("f", KEYS, length=8))
    with pytest.raises(ConfigurationError, match="not supported for float"):
        floats.c.f == 1.5  # noqa: B015
