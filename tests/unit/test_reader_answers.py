"""The one reader takes no answer on trust: a 200 that is not the file's size (a login page) and a 206
whose length contradicts its range are errors, never bytes of the file. A failed read is remembered
briefly, so the kernel's retries of the same pages do not wait for the server again."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest

from xnatfs.cache.blocks import BlockReader
from xnatfs.errors import ServerError, TransportError
from xnatfs.model.reading import FileReaders
from xnatfs.settings import ReadSettings

pytestmark = pytest.mark.unit

KiB, MiB = 1024, 1024 * 1024
SETTINGS = ReadSettings(block_size=64 * KiB, first_block_size=16 * KiB, max_readahead=512 * KiB,
                        keep_behind=128 * KiB, total_budget=4 * MiB, max_streams=4, wait_timeout=2.0)
LOGIN_PAGE = b"<html><head><title>XNAT Login</title></head><body><form>...</form></body></html>" * 40


class Answer:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status, self._body, self.headers = status, body, headers
        self.url = "http://xnat/f"
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        data, self._body = (self._body, b"") if size < 0 else (self._body[:size], self._body[size:])
        return data

    def close(self) -> None:
        self.closed = True


class Session:
    """Answers each GET with ``answer(start, end_or_None)``; ``None`` for no Range header."""

    def __init__(self, answer) -> None:  # type: ignore[no-untyped-def]
        self.answer = answer
        self.sent: list[Answer] = []

    def open_stream(self, method: str, path: str, *, headers: dict[str, str], ok: tuple[int, ...]) -> Answer:
        header = headers.get("Range")
        if header is None:
            start, end = 0, None
        else:
            first, _, last = header.removeprefix("bytes=").partition("-")
            start, end = int(first), (int(last) + 1 if last else None)
        self.sent.append(self.answer(start, end))
        return self.sent[-1]


def reader(size: int, answer,  # type: ignore[no-untyped-def]
           settings: ReadSettings = SETTINGS) -> tuple[BlockReader, FileReaders, list[Answer]]:
    session = Session(answer)
    readers = FileReaders(session, settings)  # type: ignore[arg-type]
    return readers.open("/data/f", size, name="f"), readers, session.sent


@pytest.mark.parametrize("size", [100, 1000, len(LOGIN_PAGE) + 5000])
def test_a_login_page_with_200_is_an_error_not_the_file(size: int) -> None:
    """Shorter or longer than the file, a page with its own Content-Length never becomes the file's bytes."""
    handle, readers, sent = reader(size, lambda start, end: Answer(
        200, LOGIN_PAGE, {"Content-Length": str(len(LOGIN_PAGE)), "Content-Type": "text/html;charset=UTF-8"}))
    with pytest.raises(ServerError, match="login page") as caught:
        handle.read(0, 4096)
    assert "text/html" in str(caught.value) and f"a file of {size} bytes" in str(caught.value)
    assert readers.range_supported is None  # not taken for a server that ignores Range
    assert all(answer.closed for answer in sent)
    handle.close()


def test_a_login_page_for_the_background_stream_is_an_error() -> None:
    """The first block is honest; the stream of the sequential run gets a login page: an error, no bytes."""
    data = bytes(range(256)) * 1024
    size = len(data)

    def answer(start: int, end: int | None) -> Answer:
        if end is None:
            return Answer(200, LOGIN_PAGE, {"Content-Length": str(len(LOGIN_PAGE)), "Content-Type": "text/html"})
        return Answer(206, data[start:end], {"Content-Range": f"bytes {start}-{end - 1}/{size}",
                                             "Content-Length": str(end - start)})

    handle, readers, _ = reader(size, answer)
    assert handle.read(0, 16 * KiB) == data[:16 * KiB]
    with pytest.raises(ServerError, match="login page"):
        handle.read(16 * KiB, 32 * KiB)
    assert readers.range_supported is True
    handle.close()


def test_a_whole_file_answer_of_the_right_size_is_used() -> None:
    data = bytes(range(256)) * 800  # bigger than the first block: a read at 1000 asks for a range
    handle, readers, _ = reader(len(data), lambda start, end: Answer(200, data, {"Content-Length": str(len(data))}))
    assert handle.read(1000, 3000) == data[1000:4000]
    assert readers.range_supported is False
    handle.close()


def test_a_206_whose_length_contradicts_its_range_is_an_error() -> None:
    size = 64 * KiB

    def lying(start: int, end: int | None) -> Answer:
        stop = size if end is None else end
        return Answer(206, b"x" * (stop - start), {"Content-Range": f"bytes {start}-{stop - 1}/{size}",
                                                   "Content-Length": str(stop - start + 10)})

    handle, _, _ = reader(size, lying)
    with pytest.raises(ServerError, match="Content-Length"):
        handle.read(0, 4096)
    handle.close()


def test_a_failed_read_is_remembered_briefly_then_tried_again() -> None:
    data = bytes(range(256)) * 64
    calls: list[tuple[int, int | None]] = []
    down = [True]

    def opener(method: str, path: str, *, headers: dict[str, str], ok: tuple[int, ...]) -> Answer:
        first, _, last = headers["Range"].removeprefix("bytes=").partition("-")
        start, end = int(first), (int(last) + 1 if last else None)
        calls.append((start, end))
        if down[0]:
            raise TransportError("connection refused")
        stop = len(data) if end is None else end
        return Answer(206, data[start:stop], {"Content-Range": f"bytes {start}-{stop - 1}/{len(data)}"})

    settings = dataclasses.replace(SETTINGS, failure_memory=0.3)
    session = Session(None)
    session.open_stream = opener  # type: ignore[method-assign]
    handle = FileReaders(session, settings).open("/data/f", len(data), name="f")  # type: ignore[arg-type]
    with pytest.raises(TransportError):
        handle.read(0, 4096)
    down[0] = False
    with pytest.raises(TransportError) as again:  # the kernel's retry: the same error at once, no request
        handle.read(0, 4096)
    assert again.value.errno == TransportError.errno and "connection refused" in str(again.value)
    assert getattr(again.value, "log_level", None) == logging.DEBUG  # logged once, at error level, the first time
    assert len(calls) == 1
    time.sleep(0.35)
    assert handle.read(0, 4096) == data[:4096]
    assert len(calls) == 2
    handle.close()


def test_a_small_file_is_fetched_whole_at_its_first_read_wherever_it_falls() -> None:
    """dcm2niix reads a DICOM file's tail before its head: a file no bigger than the first block costs
    one request, not one for the tail and one for the head."""
    data = bytes(range(256)) * 130  # 33,280 bytes, a 128x128 slice
    asked: list[tuple[int, int]] = []

    def answer(start: int, end: int) -> Answer:
        asked.append((start, end))
        return Answer(206, data[start:end], {"Content-Range": f"bytes {start}-{end - 1}/{len(data)}"})

    handle, _, _ = reader(len(data), answer, dataclasses.replace(SETTINGS, first_block_size=128 * KiB))
    assert handle.read(len(data) - 1406, 1406) == data[-1406:]
    assert handle.read(0, 8192) == data[:8192]
    assert asked == [(0, len(data))]
    handle.close()
