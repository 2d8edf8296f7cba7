"""What differs between SQLite and PostgreSQL when rows go to the driver directly.

UTC times in each driver's terms, paramstyles, PostgreSQL's typed binary arrays (one
``unnest`` statement per table for any number of rows) and statements planned per call.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import (
    Dialect,
    Table,
)
from sqlalchemy.dialects import registry as dialect_registry
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeEngine

from gateway.core.errors import StoreError
from gateway.store.tables import (
    METADATA,
)

# -- driver-level writes of the intake transaction -------------------------------------------
#
# Intake writes a dozen multi-row INSERTs per batch. Through SQLAlchemy Core every row's every
# value goes through bind processing and every statement through the compiled cache, which
# cost more CPU than the database's own work. These write the same values, converted as
# SQLAlchemy converts them (only the UTC times need it), through the driver's executemany with
# SQL text built once per dialect (on PostgreSQL one statement per table instead, its values
# as one array per column: see ``unnest``). ``exec_driver_sql`` keeps SQLAlchemy's error
# wrapping, its transaction and its event hooks.

_SQLITE_TIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"
"""SQLAlchemy's storage format of a SQLite DATETIME (``sqlalchemy.dialects.sqlite.DATETIME``)."""


def _sqlite_time(value: dt.datetime | None) -> str | None:
    """An aware time as SQLAlchemy stores a :class:`UtcDateTime` in SQLite: naive UTC text."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("the store only accepts timezone-aware datetimes")
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return _SQLITE_TIME % (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def _postgres_time(value: dt.datetime | None) -> dt.datetime | None:
    """An aware time as SQLAlchemy hands a :class:`UtcDateTime` to psycopg: in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("the store only accepts timezone-aware datetimes")
    return value if value.tzinfo is dt.UTC else value.astimezone(dt.UTC)


TimeParameter = Callable[[dt.datetime | None], Any]


def time_parameter(dialect: str) -> TimeParameter:
    """How a :class:`UtcDateTime` value goes to this dialect's driver."""
    return _sqlite_time if dialect == "sqlite" else _postgres_time


def marks(dialect: str, count: int) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    return f"({', '.join([mark] * count)})"


class _PgArray(list[Any]):
    """One column of a batch as a PostgreSQL array parameter of :func:`unnest`.

    Each subclass names its element type, and :func:`register_array_dumpers` gives psycopg a
    dumper of that fixed type for it. A plain list would be typed by its values (``int2[]`` or
    ``int8[]`` by their size, "unknown" when every value is NULL), and psycopg prepares a
    statement per text *and parameter types*: batches with other NULLs or numbers would each
    need their own five runs before being prepared, and crowd its cache of 100 statements.
    """

    pg_type: ClassVar[str]


class _VarcharArray(_PgArray):
    pg_type = "varchar"


class TextArray(_PgArray):
    pg_type = "text"


class _IntegerArray(_PgArray):
    pg_type = "integer"


class _BigintArray(_PgArray):
    pg_type = "bigint"


class _ByteaArray(_PgArray):
    pg_type = "bytea"


class _TimestamptzArray(_PgArray):
    pg_type = "timestamp with time zone"


_ARRAYS: dict[str, type[_PgArray]] = {
    cls.pg_type: cls
    for cls in (
        _VarcharArray,
        TextArray,
        _IntegerArray,
        _BigintArray,
        _ByteaArray,
        _TimestamptzArray,
    )
}


@functools.cache
def register_array_dumpers() -> None:
    """Teach psycopg (all connections opened from now on) to send each :class:`_PgArray` as a
    binary array of its element type. Imported here: SQLite stores never load psycopg."""
    try:
        import psycopg  # noqa: PLC0415
    except ImportError as exc:
        # The driver is the extra 'postgres': a SQLite-only install does not have it.
        raise StoreError(
            "a PostgreSQL store needs the psycopg driver: pip install 'ijw-gateway[postgres]'"
        ) from exc
    from psycopg.types.array import ListBinaryDumper  # noqa: PLC0415

    for array in _ARRAYS.values():
        info = psycopg.postgres.types.get(array.pg_type)
        if info is None:
            raise StoreError(f"psycopg does not know the type {array.pg_type}")
        # Class bodies do not see names they assign themselves in the enclosing scope.
        array_oid, its_element_oid = info.array_oid, info.oid

        class Dumper(ListBinaryDumper):
            oid = array_oid
            element_oid = its_element_oid

        psycopg.adapters.register_dumper(array, Dumper)


@functools.cache
def _insert_sql(dialect: str, table: str, columns: tuple[str, ...], on_conflict: str = "") -> str:
    """The INSERT of :func:`insert_rows` in the driver's paramstyle: on SQLite ``VALUES (?,
    ...)`` for an executemany, on PostgreSQL ``SELECT * FROM unnest(%b::type[], ...)`` with one
    array per column (see :func:`unnest`)."""
    suffix = f" ON CONFLICT {on_conflict}" if on_conflict else ""
    source = (
        f"VALUES {marks(dialect, len(columns))}"
        if dialect == "sqlite"
        else unnest(METADATA.tables[table], columns)
    )
    return f"INSERT INTO {table} ({', '.join(columns)}) {source}{suffix}"


def unnest(table: Table, columns: tuple[str, ...]) -> str:
    """``SELECT * FROM unnest(%b::type[], ...)``: PostgreSQL rows from one array per column.

    One statement for any number of rows, and always the same text, so psycopg prepares it
    after a few executions and the server parses and plans it once per connection (an
    executemany runs one statement per row; a multi-row VALUES is a new text per row count).
    The arrays are typed from the columns, without a length: a cast to ``varchar(n)`` would cut
    a value that is too long, where the INSERT must fail as it does from VALUES. They travel in
    binary (``%b``): as text, every payload would be hex-encoded into an array literal and
    every JSON body escaped, and the server would parse both back (5x the time for 10 rows of
    4 KiB payloads and register bodies).
    """
    casts = ", ".join(f"%b::{array.pg_type}[]" for array in _arrays_of(table.name, columns))
    return f"SELECT * FROM unnest({casts})"


_POSTGRESQL: Dialect = dialect_registry.load("postgresql")()
"""A PostgreSQL dialect to compile column types with (the store's engine may not exist yet)."""


def _array_type(column_type: TypeEngine[Any]) -> type[_PgArray]:
    """The array a column's values travel in, by the column's PostgreSQL type."""
    compiled = column_type.compile(dialect=_POSTGRESQL)
    return _ARRAYS[re.sub(r"\(.*\)", "", compiled).lower()]


@functools.cache
def _arrays_of(table: str, columns: tuple[str, ...]) -> tuple[type[_PgArray], ...]:
    return tuple(_array_type(METADATA.tables[table].c[name].type) for name in columns)


def columns_of(
    rows: Sequence[tuple[Any, ...]], table: str, columns: tuple[str, ...]
) -> tuple[_PgArray, ...]:
    """``rows`` turned into one typed array per column (the parameters of :func:`unnest`)."""
    arrays = _arrays_of(table, columns)
    return tuple(
        array(values) for array, values in zip(arrays, zip(*rows, strict=True), strict=True)
    )


def insert_rows(
    conn: Connection,
    dialect: str,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    *,
    on_conflict: str = "",
) -> None:
    """Insert ``rows`` (values in ``columns`` order, converted for the driver) in one go: an
    executemany on SQLite, one statement with an array per column on PostgreSQL."""
    if not rows:
        return
    statement = _insert_sql(dialect, table.name, columns, on_conflict)
    if dialect == "sqlite":
        conn.exec_driver_sql(statement, rows)
    else:
        conn.exec_driver_sql(statement, columns_of(rows, table.name, columns))


@contextmanager
def planned_per_call(conn: Connection) -> Iterator[None]:
    """Statements run in this block on PostgreSQL are planned for their own parameters on
    every call: psycopg does not prepare them.

    psycopg prepares a statement on its fifth run on a connection, and from then on the server
    may reuse one generic plan, made with the statistics of that moment. For a search on a
    table that grows (the linking UPDATEs, the settling query) a plan made while the table was
    nearly empty can be the walk that grows with it: in bench/daemon.py, starting on an empty
    database, the linking UPDATEs kept walking every waiting exchange through
    ``ix_correlations_linked`` (1 ms per call and rising) until statistics changed. Planning
    costs 0.2-0.3 ms per call, a bounded price; the INSERTs, whose plans never depend on the
    data, stay prepared.
    """
    if conn.dialect.name == "sqlite":
        yield
        return
    driver: Any = conn.connection.driver_connection
    threshold = driver.prepare_threshold
    driver.prepare_threshold = None
    try:
        yield
    finally:
        driver.prepare_threshold = threshold
