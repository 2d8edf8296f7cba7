"""The daemon's allocator and garbage-collector settings (gateway/daemon/memory.py)."""

from __future__ import annotations

import gc
import weakref

import pytest

from gateway.daemon import memory


class FakeLibc:
    def __init__(self, answer: int = 1) -> None:
        self.answer = answer
        self.calls: list[tuple[str, int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return self.answer

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad, 0))
        return self.answer


def test_the_arena_limit_is_set_through_mallopt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    libc = FakeLibc()
    assert memory.limit_malloc_arenas(3, libc)
    assert libc.calls == [("mallopt", memory.M_ARENA_MAX, 3)]


def test_an_explicit_environment_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    libc = FakeLibc()
    assert not memory.limit_malloc_arenas(2, libc)
    assert libc.calls == []


def test_a_refusal_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert not memory.limit_malloc_arenas(2, FakeLibc(answer=0))
    assert not memory.release_free_memory(FakeLibc(answer=0))


def test_without_glibc_nothing_is_done() -> None:
    assert not memory.limit_malloc_arenas(2, None)
    assert not memory.release_free_memory(None)


@pytest.mark.skipif(memory._LIBC is None, reason="needs glibc")
def test_freed_pages_inside_the_heap_go_back_to_the_system() -> None:
    # Blocks above the small-object allocator's limit come from malloc; keeping every 64th
    # alive stops malloc from shrinking the heap by itself, so only a trim can return the
    # pages between them.
    blocks = [bytes(2000) for _ in range(20_000)]
    survivors = blocks[::64]
    del blocks
    assert memory.release_free_memory()
    assert len(survivors) == 313


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> _Node:
    """Two objects referring to each other: once unreferenced, only the collector frees them."""
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return first


def test_frozen_start_up_objects_are_left_alone_and_later_garbage_is_collected() -> None:
    start_up = _cycle()
    built_at_start = weakref.ref(start_up)
    try:
        assert memory.freeze_startup_objects() > 0
        del start_up  # garbage now, but frozen: a full collection must not walk it
        made_later = weakref.ref(_cycle())
        gc.collect()
        assert made_later() is None
        assert built_at_start() is not None
    finally:
        gc.unfreeze()
    gc.collect()
    assert built_at_start() is None
