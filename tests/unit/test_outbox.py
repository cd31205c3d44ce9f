"""The write lifecycle without FUSE: spooling, attempts on close, failures kept with notes, ENOSPC,
killed writers (a real SIGKILLed child), the zip check, the spool at unmount, upload progress."""

from __future__ import annotations

import errno
import io
import logging
import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from xnatfs.errors import ServerError
from xnatfs.vfs.outbox import Entry, Outbox, State
from xnatfs.errors import NotImportable, NotSent, SpoolWriteError, UploadFailed
from xnatfs.vfs.procstat import killed_by
from xnatfs.vfs.spool import Spool, kept_files
from xnatfs.model.writer import UploadProgress
from xnatfs.model.zipcheck import check_import_zip, looks_like_dicom

pytestmark = pytest.mark.unit

PREAMBLE = b"\0" * 128 + b"DICM"


class Recorder(Outbox):
    """An outbox whose 'server' keeps what it is sent (or refuses while ``refuse`` is set)."""

    def __init__(self, spool: Spool) -> None:
        super().__init__(spool)
        self.sent_data: list[bytes] = []
        self.refuse: Exception | None = None

    def validate(self, entry: Entry) -> None:
        if entry.spool.size == 0:
            raise NotSent(f"{entry.name} is empty")

    def send(self, entry: Entry) -> bytes | None:
        if self.refuse is not None:
            raise self.refuse
        self.sent_data.append(entry.spool.path.read_bytes())
        return b"/data/sent\n"


@pytest.fixture
def outbox(tmp_path: Path) -> Recorder:
    return Recorder(Spool(tmp_path / "spool"))


def test_a_file_is_sent_once_on_the_close_after_its_writes(outbox: Recorder) -> None:
    handle = outbox.start("/d/a.zip", target=None)
    handle.flush(os.getpid())  # the shell's `>` closes a duplicate before anything is written
    assert outbox.sent_data == []
    handle.write(b"hello ", 0)
    handle.write(b"world", 6)
    assert outbox.node("/d/a.zip").stat.size == 11
    handle.flush(os.getpid())
    handle.flush(os.getpid())  # a second close of a duplicate: nothing new
    handle.close()
    assert outbox.sent_data == [b"hello world"]
    assert outbox.node("/d/a.zip") is None
    assert outbox.node("/d/a.zip.result").data == b"/data/sent\n"
    assert [n.name for n in outbox.children("/d")] == ["a.zip.result"]
    assert list(outbox.spool.directory.iterdir()) == []


def test_a_refused_file_is_kept_with_an_error_and_sent_when_written_again(outbox: Recorder) -> None:
    outbox.refuse = ServerError("Server error", status=500, excerpt="<h3>disk full on the server</h3>")
    handle = outbox.start("/d/b.zip", target=None)
    handle.write(b"data", 0)
    with pytest.raises(UploadFailed) as info:
        handle.flush(os.getpid())
    assert info.value.errno == errno.EIO
    handle.close()
    kept = outbox.node("/d/b.zip")
    assert kept is not None and kept.local.state is State.KEPT
    error = outbox.node("/d/b.zip.error").data.decode()
    assert "refused by the server (HTTP 500)" in error and "disk full on the server" in error and "<h3>" not in error
    again = outbox.reopen(kept.local, write=True, truncate=True)
    outbox.refuse = None
    again.write(b"data, again", 0)
    again.flush(os.getpid())
    assert outbox.sent_data == [b"data, again"]
    assert outbox.node("/d/b.zip.error") is None and outbox.node("/d/b.zip") is None


def test_an_early_close_of_a_duplicate_fails_and_the_final_close_sends(outbox: Recorder) -> None:
    outbox.refuse = ServerError("incomplete", status=400)  # what the check would say of a partial file
    handle = outbox.start("/d/c.zip", target=None)
    handle.write(b"first part", 0)
    with pytest.raises(UploadFailed):
        handle.flush(os.getpid())  # a child holding a duplicate exits: its close comes first
    outbox.refuse = None
    handle.write(b", second part", 10)  # the parent keeps writing through its own descriptor
    handle.flush(os.getpid())
    handle.close()
    assert outbox.sent_data == [b"first part, second part"]
    assert outbox.node("/d/c.zip.error") is None


def test_a_file_never_written_is_attempted_when_its_last_writer_closes(outbox: Recorder) -> None:
    handle = outbox.start("/d/touched", target=None)
    handle.flush(os.getpid())
    handle.close()
    assert outbox.sent_data == []
    assert b"is empty" in outbox.node("/d/touched.error").data
    assert outbox.remove("/d/touched") and outbox.node("/d/touched.error") is None


def test_enospc_on_the_spool_fails_the_write_and_the_close_and_frees_the_space(tmp_path: Path) -> None:
    outbox = Recorder(Spool(tmp_path / "spool", opener=lambda path: os.open("/dev/full", os.O_RDWR)))
    handle = outbox.start("/d/full.zip", target=None)
    with pytest.raises(SpoolWriteError) as info:
        handle.write(b"x" * 4096, 0)
    assert info.value.errno == errno.ENOSPC  # the writer's write(2) fails with ENOSPC
    with pytest.raises(UploadFailed):
        handle.flush(os.getpid())
    handle.close()
    assert outbox.sent_data == []
    assert outbox.node("/d/full.zip") is None  # the partial copy is gone
    assert "spool disk" in outbox.node("/d/full.zip.error").data.decode()


def test_a_killed_writer_is_recognised_and_nothing_is_sent(outbox: Recorder) -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        child.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while killed_by(child.pid) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        killed = killed_by(child.pid)  # a zombie keeps the flags and the exit code
        assert killed is not None and killed.signal == signal.SIGKILL and killed.command == "sleep"
        handle = outbox.start("/d/k.zip", target=None)
        handle.write(b"complete data", 0)
        with pytest.raises(UploadFailed):
            handle.flush(child.pid)
        assert outbox.sent_data == []
        assert "killed by SIGKILL" in outbox.node("/d/k.zip.error").data.decode()
    finally:
        child.wait()


def test_killed_by_is_none_for_living_and_normally_ended_processes() -> None:
    assert killed_by(os.getpid()) is None
    assert killed_by(0) is None and killed_by(2**22 + 12345) is None
    child = subprocess.Popen(["sh", "-c", "exit 3"])
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child.pid}/stat").read_text().split()[2] != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert killed_by(child.pid) is None
    child.wait()


def test_at_unmount_kept_files_stay_on_disk_and_the_rest_goes(tmp_path: Path) -> None:
    outbox = Recorder(Spool(tmp_path / "spool"))
    outbox.refuse = ServerError("no", status=500)
    kept = outbox.start("/d/kept", target=None)
    kept.write(b"keep me", 0)
    with pytest.raises(UploadFailed):
        kept.flush(os.getpid())
    kept.close()
    open_one = outbox.start("/d/open", target=None)
    open_one.write(b"half", 0)
    spooled = outbox.close()
    outbox.spool.close(keep=spooled)
    remaining = sorted(p.read_bytes() for p in outbox.spool.directory.iterdir() if not p.name.startswith("."))
    assert remaining == [b"half", b"keep me"]  # nothing written is lost, nothing is sent half-written
    assert len(Spool(tmp_path / "spool").leftovers()) == 2  # the next mount reminds the user of them
    tickets = {k.path.read_bytes(): k.ticket for k in kept_files(tmp_path / "spool")}  # each says why it stayed
    assert "refused by the server (HTTP 500)" in tickets[b"keep me"]["reason"]
    assert "still open for writing when the mount ended" in tickets[b"half"]["reason"]
    empty = Spool(tmp_path / "other")
    empty.new_file("x").discard()
    empty.close()
    assert not empty.directory.exists()


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(("data", "words"), [
    (b"", "is empty"),
    (b"MZ not a zip", "not a zip archive"),
    (make_zip({"a.dcm": PREAMBLE + b"x" * 1000})[:-30], "not a complete zip archive"),
    (make_zip({}), "no files"),
    (make_zip({"README.txt": b"hello", "__MACOSX/._a.dcm": PREAMBLE}), "contains no DICOM"),
])
def test_the_zip_check_refuses_with_words(tmp_path: Path, data: bytes, words: str) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(data)
    with pytest.raises(NotImportable) as info:
        check_import_zip(path, "x.zip")
    assert words in str(info.value) and str(info.value).startswith("x.zip")


def test_the_zip_check_reads_every_member_to_its_crc(tmp_path: Path) -> None:
    good = make_zip({"a/1.dcm": PREAMBLE + os.urandom(3000), "a/2.dcm": PREAMBLE + os.urandom(3000),
                     "notes.txt": b"n"}, zipfile.ZIP_STORED)
    path = tmp_path / "ok.zip"
    path.write_bytes(good)
    assert check_import_zip(path, "ok.zip") == (3, 2)
    damaged = bytearray(good)
    damaged[good.index(b"DICM", good.index(b"DICM") + 1) + 100] ^= 0x55  # inside the second member
    path.write_bytes(bytes(damaged))
    with pytest.raises(NotImportable, match="damaged"):
        check_import_zip(path, "ok.zip")


def test_dicom_sniffing() -> None:
    assert looks_like_dicom(PREAMBLE + b"\x02\x00")
    assert looks_like_dicom(b"\x08\x00\x05\x00CS")  # a raw dataset without the Part 10 header
    assert not looks_like_dicom(b"%PDF-1.7") and not looks_like_dicom(b"")


def test_upload_progress_goes_to_the_log(caplog: pytest.LogCaptureFixture) -> None:
    progress = UploadProgress("/import/P/big.zip", 4 * 2**20, interval=0)
    with caplog.at_level(logging.INFO, logger="xnatfs.model.writer"):
        progress(2**20, 4 * 2**20)
        progress(2 * 2**20, 4 * 2**20)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("Uploading /import/P/big.zip: 1.0 MiB of 4.0 MiB (25%)")
    assert "(50%)" in lines[1] and "4.0 MiB in" in progress.finished()
