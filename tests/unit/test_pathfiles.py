"""PathFiles: the open files of a read-only mount's reads, which come by path without an open."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from xnatfs.errors import ServerError
from xnatfs.vfs.nodes import Node, NodeKind, file_stat
from xnatfs.vfs.pathfiles import PathFiles


class FakeFile:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.closed = False

    def read(self, offset: int, size: int) -> bytes:
        assert not self.closed, "read of a closed file"
        return self.data[offset: offset + size]

    def close(self) -> None:
        self.closed = True


class FakeFilesystem:
    """Paths → contents; each path's node is replaced by :meth:`change` (a new listing)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.nodes = {path: self._node(path) for path in files}
        self.opened: list[FakeFile] = []
        self.open_delay = 0.0
        self.failures = 0
        self.released: list[FakeFile] = []

    def _node(self, path: str) -> Node:
        return Node(NodeKind.FILE, path, file_stat(len(self.files[path]), 0.0))

    def change(self, path: str, data: bytes) -> None:
        self.files[path] = data
        self.nodes[path] = self._node(path)

    def lookup(self, path: str) -> Node:
        return self.nodes[path]

    def open(self, path: str, flags: int = 0) -> FakeFile:
        time.sleep(self.open_delay)
        if self.failures:
            self.failures -= 1
            raise ServerError("HTTP 500")
        handle = FakeFile(self.files[path])
        self.opened.append(handle)
        return handle

    def release(self, handle: FakeFile) -> None:
        self.released.append(handle)
        handle.close()


def test_a_file_is_opened_once_for_its_reads_and_closed_when_read_to_its_end() -> None:
    fs = FakeFilesystem({"/a": b"0123456789"})
    files = PathFiles(fs)
    assert files.read("/a", 0, 4) == b"0123"
    assert files.read("/a", 4, 4) == b"4567"
    assert len(fs.opened) == 1 and not fs.opened[0].closed and len(files) == 1
    assert files.read("/a", 8, 4) == b"89"  # the end: the kernel has the whole file now
    assert fs.opened[0].closed and len(files) == 0
    assert files.read("/a", 0, 2) == b"01"  # a read after that (pages dropped) opens it again
    assert len(fs.opened) == 2


def test_a_file_read_tail_first_stays_open_until_its_head_is_read() -> None:
    fs = FakeFilesystem({"/a": b"0123456789"})
    files = PathFiles(fs)
    assert files.read("/a", 8, 4) == b"89"  # dcm2niix: the tail first
    assert files.read("/a", 0, 4) == b"0123"
    assert len(fs.opened) == 1 and not fs.opened[0].closed
    assert files.read("/a", 4, 6) == b"456789"
    assert fs.opened[0].closed and len(files) == 0


def test_new_content_at_the_path_means_a_new_open_file_and_a_new_node_alone_does_not() -> None:
    fs = FakeFilesystem({"/a": b"old content"})
    files = PathFiles(fs)
    assert files.read("/a", 0, 3) == b"old"
    fs.nodes["/a"] = fs._node("/a")  # a fresh listing (or a view's lookup): the same file
    assert files.read("/a", 3, 3) == b" co"
    assert len(fs.opened) == 1
    fs.change("/a", b"new content!")
    assert files.read("/a", 0, 3) == b"new"
    assert fs.opened[0].closed and not fs.opened[1].closed


def test_reads_in_parallel_share_one_open() -> None:
    fs = FakeFilesystem({"/a": bytes(range(256)) * 16})
    fs.open_delay = 0.2
    files = PathFiles(fs)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: files.read("/a", i * 100, 100), range(8)))
    assert results == [(bytes(range(256)) * 16)[i * 100: i * 100 + 100] for i in range(8)]
    assert len(fs.opened) == 1


def test_a_failed_open_fails_every_waiting_read_and_the_next_read_tries_again() -> None:
    fs = FakeFilesystem({"/a": b"abcdef"})
    fs.open_delay, fs.failures = 0.2, 1
    files = PathFiles(fs)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(files.read, "/a", 0, 2) for _ in range(4)]
    for future in futures:
        with pytest.raises(ServerError):
            future.result()
    fs.open_delay = 0.0
    assert files.read("/a", 0, 2) == b"ab"


def test_at_most_kept_files_stay_open_and_one_in_use_is_closed_after_its_read() -> None:
    fs = FakeFilesystem({f"/{i}": b"x" * 10 for i in range(5)})
    files = PathFiles(fs, kept=2)
    started, finish = threading.Event(), threading.Event()
    slow_data = fs.files["/0"]

    class SlowFile(FakeFile):
        def read(self, offset: int, size: int) -> bytes:
            started.set()
            assert finish.wait(5)
            return super().read(offset, size)

    real_open = fs.open
    fs.open = lambda path, flags=0: SlowFile(slow_data) if path == "/0" else real_open(path, flags)  # type: ignore[method-assign]
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(files.read, "/0", 0, 2)
        assert started.wait(5)
        for i in range(1, 5):
            assert files.read(f"/{i}", 0, 2) == b"xx"
        assert len(files) == 2  # /0 was pushed out while in use...
        assert not fs.released or all(not isinstance(h, SlowFile) for h in fs.released)
        finish.set()
        assert slow.result() == b"xx"
    assert any(isinstance(h, SlowFile) for h in fs.released)  # ...and closed once its read ended
    assert [h.closed for h in fs.opened] == [True, True, False, False]


def test_close_closes_every_file() -> None:
    fs = FakeFilesystem({"/a": b"abcdef", "/b": b"ghijkl"})
    files = PathFiles(fs)
    files.read("/a", 0, 1)
    files.read("/b", 0, 1)
    files.close()
    assert all(h.closed for h in fs.opened) and len(files) == 0
