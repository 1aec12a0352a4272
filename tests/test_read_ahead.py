"""read_ahead: poll mode's LIST pages, the next one read on another thread while the loop handles this one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from scheduler import read_ahead


def test_the_next_item_is_read_on_the_other_thread_while_this_one_is_handled() -> None:
    read: list[tuple[int, str]] = []
    second_read = threading.Event()

    def pages() -> Iterator[int]:
        for page in (1, 2, 3):
            read.append((page, threading.current_thread().name))
            if page == 2:
                second_read.set()
            yield page

    with ThreadPoolExecutor(1, thread_name_prefix="list") as thread:
        handled = []
        for page in read_ahead(pages(), thread):
            if page == 1:
                assert second_read.wait(5)  # page 2 comes while page 1 is being handled
            handled.append(page)
    assert handled == [1, 2, 3]
    assert all(name.startswith("list") for _, name in read)


def test_an_error_is_raised_where_its_item_would_have_come() -> None:
    def pages() -> Iterator[int]:
        yield 1
        raise RuntimeError("the API server went away")

    with ThreadPoolExecutor(1) as thread:
        ahead = read_ahead(pages(), thread)
        assert next(ahead) == 1
        with pytest.raises(RuntimeError, match="went away"):
            next(ahead)


def test_nothing_to_read() -> None:
    with ThreadPoolExecutor(1) as thread:
        assert list(read_ahead(iter([]), thread)) == []
