"""Column types and helpers shared by the tables: ids, foreign keys, UTC timestamps, money."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    TypeDecorator,
)
from sqlmodel import Field

from core.clock import UTC

ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER keys


class UTCDateTime(TypeDecorator):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def pk() -> Any:
    return Field(default=None, sa_column=Column(ID, primary_key=True, autoincrement=True))


def fk(target: str, *, nullable: bool = False, index: bool = True) -> Any:
    from sqlalchemy import ForeignKey

    return Field(default=None if nullable else ..., sa_column=Column(ID, ForeignKey(target), nullable=nullable, index=index))


def ts(*, nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


def money() -> Any:
    return Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
