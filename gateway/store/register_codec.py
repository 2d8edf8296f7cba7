"""How a register record (a :mod:`gateway.core.dossier` dataclass) becomes the JSON body of its
row and back. The BSN is never in the body: it is given back on decoding, by the caller that
knows which client the row's key stands for."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from enum import Enum
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

R = TypeVar("R")

Encoder = Callable[[Any], Any]
_PLANS: dict[type[Any], tuple[tuple[str, Encoder | None], ...]] = {}
"""Per record class: its fields except ``bsn``, each with how its value becomes JSON (None:
as it is). Worked out once per class from the type hints instead of per field per entry."""


def encode_record(record: Any) -> dict[str, Any]:
    """The record's fields as JSON values, without any BSN."""
    plan = _PLANS.get(type(record))
    if plan is None:
        plan = _PLANS[type(record)] = _plan(type(record))
    out: dict[str, Any] = {}
    for name, encoder in plan:
        value = getattr(record, name)
        out[name] = value if encoder is None or value is None else encoder(value)
    return out


def _plan(cls: type[Any]) -> tuple[tuple[str, Encoder | None], ...]:
    hints = type_hints_of(cls)
    return tuple(
        (f.name, _encoder_for(hints[f.name])) for f in dataclasses.fields(cls) if f.name != "bsn"
    )


def _encoder_for(hint: Any) -> Encoder | None:
    """How :func:`_encode_value` treats values of this hint, decided once; the generic
    :func:`_encode_value` for anything else."""
    target = hint
    if isinstance(hint, UnionType) or get_origin(hint) is Union:
        members = [a for a in get_args(hint) if a is not type(None)]
        if len(members) != 1:
            return _encode_value
        target = members[0]
    if target in (str, int, bool):
        return None
    if target in (dt.date, dt.time):
        return _isoformat
    if isinstance(target, type) and issubclass(target, Enum):
        return _enum_value
    if isinstance(target, type) and dataclasses.is_dataclass(target):
        return encode_record
    return _encode_value


def _isoformat(value: dt.date | dt.time) -> str:
    return value.isoformat()


def _enum_value(value: Enum) -> Any:
    return value.value


def _encode_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode_record(value)
    return value


_HINTS: dict[type[Any], dict[str, Any]] = {}


def type_hints_of(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


Decoder = Callable[[Any, str], Any]
_DECODERS: dict[type[Any], tuple[tuple[str, Decoder | None], ...]] = {}
"""Per record class: its fields, each with how its JSON value is read back (None: as it is),
worked out once from the type hints (``bsn`` is set apart: it is never in the body)."""


def decode_record(cls: type[R], body: dict[str, Any], bsn: str) -> R:
    """The record of class ``cls`` from its row's body, with ``bsn`` as its client."""
    plan = _DECODERS.get(cls)
    if plan is None:
        plan = _DECODERS[cls] = tuple(
            (name, _decoder_for(hint)) for name, hint in type_hints_of(cls).items()
        )
    values: dict[str, Any] = {}
    for name, decoder in plan:
        if name == "bsn":
            values[name] = bsn
            continue
        value = body.get(name)
        values[name] = value if value is None or decoder is None else decoder(value, bsn)
    return cls(**values)


def _decoder_for(hint: Any) -> Decoder | None:
    """How :func:`decode_value` reads a value of this hint, decided once."""
    target = next((a for a in get_args(hint) if a is not type(None)), hint)
    if target is dt.date:
        return lambda value, _: dt.date.fromisoformat(value)
    if target is dt.time:
        return lambda value, _: dt.time.fromisoformat(value)
    if isinstance(target, type) and issubclass(target, Enum):
        return lambda value, _: target(value)
    if isinstance(target, type) and dataclasses.is_dataclass(target):
        return lambda value, bsn: decode_record(target, value, bsn)
    return None


def decode_value(hint: Any, value: Any, bsn: str) -> Any:
    if value is None:
        return None
    target = next((a for a in get_args(hint) if a is not type(None)), hint)
    if target is dt.date:
        return dt.date.fromisoformat(value)
    if target is dt.time:
        return dt.time.fromisoformat(value)
    if isinstance(target, type) and issubclass(target, Enum):
        return target(value)
    if isinstance(target, type) and dataclasses.is_dataclass(target):
        return decode_record(target, value, bsn)
    return value
