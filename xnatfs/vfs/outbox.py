"""Files written through the mount, from the first write to the server's answer: the shared lifecycle
of the import directory (:mod:`xnatfs.vfs.imports`) and of resource uploads
(:mod:`xnatfs.vfs.resource_writes`).

A written file is an :class:`Entry`: its data in a :class:`~xnatfs.vfs.spool.SpoolFile`, its state
(``writing`` → ``sending`` → gone when the server accepted it, or ``kept`` when it did not) and a
``dirty`` flag (bytes written since the last attempt). It is sent when its writer closes it — FUSE
``flush``, whose error is the error of ``close(2)``, so ``cp`` fails exactly when the upload failed:

1. nothing written since the last attempt → nothing to do (the shell's ``>`` closes a duplicate
   descriptor before the program writes anything);
2. a write to the spool failed (``ENOSPC``) → not sent: the data is incomplete;
3. the closing process is being killed (:func:`~xnatfs.vfs.procstat.killed_by`) → not sent: the kernel
   closes a killed writer's files as if it had finished;
4. the subclass's check (:meth:`Outbox.validate`, e.g. a complete zip of DICOM) → not sent if it fails;
5. the upload (:meth:`Outbox.send`).

Any failure keeps the file (state ``kept``: readable, removable with ``rm``, replaced by copying again)
with ``<name>.error`` beside it saying why, and ``close()`` fails with ``EIO``. Success removes the
local copy and the ``.error`` and may leave a note (an import's ``<name>.result``). When the last
writer closes a file that was never attempted (``touch``), the attempt happens then (and fails: empty).

Notes (``.error``/``.result``) are small and held in memory; their words and the errors are
:mod:`xnatfs.vfs.outcomes`'. Thread-safe: one lock for the tables,
one per entry for attempts (a long upload blocks only its own file).
"""

from __future__ import annotations

import enum
import logging
import stat as _stat
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from xnatfs.errors import (
    Busy,
    Gone,
    NotFound,
    NotImportable,
    NotSent,
    SpoolLost,
    UploadFailed,
    XNATError,
    spool_write_error,
)
from xnatfs.redact import redact_text
from xnatfs.vfs.nodes import Node, NodeKind, Stat
from xnatfs.vfs.outcomes import default_failure_text, spool_failure_text
from xnatfs.vfs.procstat import killed_by
from xnatfs.vfs.spool import Spool, SpoolFile

log = logging.getLogger(__name__)

ERROR_SUFFIX = ".error"
RESULT_SUFFIX = ".result"
NOTE_SUFFIXES = (ERROR_SUFFIX, RESULT_SUFFIX)
XATTR_STATE = "user.xnatfs.state"
NOTE_MODE = _stat.S_IFREG | 0o444


class State(enum.Enum):
    WRITING = "writing"
    SENDING = "sending"
    KEPT = "kept"
    SENT = "sent"


@dataclass(eq=False)
class Entry:
    """One file written through the mount (see the module docstring)."""

    path: str
    spool: SpoolFile
    target: Any
    state: State = State.WRITING
    dirty: bool = False
    writers: int = 0
    mode: int = 0o644
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Note:
    data: bytes
    mtime: float


class Handle:
    """An open local file: reads from the spool; writes, truncation and flush when opened for writing."""

    def __init__(self, outbox: Outbox, entry: Entry, *, writable: bool) -> None:
        self.outbox = outbox
        self.entry = entry
        self.writable = writable
        self._closed = False

    @property
    def size(self) -> int:
        return self.entry.spool.size

    def read(self, offset: int, size: int) -> bytes:
        self._check_live()
        return self.entry.spool.read(offset, size)

    def write(self, data: bytes, offset: int) -> int:
        return self.outbox.write(self, data, offset)

    def truncate(self, length: int) -> None:
        self.outbox.truncate(self.entry, length)

    def flush(self, pid: int) -> None:
        if self.writable:
            self.outbox.attempt(self.entry, pid)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.outbox.release(self)

    def _check_live(self) -> None:
        if self.entry.state is State.SENT or self.entry.spool.closed:
            raise Gone(f"{self.entry.name} was already uploaded; its local copy is gone")


class Outbox:
    """Local entries and notes under some mount paths, and their lifecycle (module docstring).

    Subclasses implement :meth:`validate`, :meth:`send` and :meth:`describe_failure`.
    """

    #: what the files are called in log lines
    kind = "file"

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self._entries: dict[str, Entry] = {}
        self._notes: dict[str, Note] = {}
        self._lock = threading.Lock()
        self._closing = False

    # -- subclass hooks ------------------------------------------------------------------------------

    def validate(self, entry: Entry) -> None:
        """Raise NotSent (or NotImportable) if the file must not be sent."""

    def send(self, entry: Entry) -> bytes | None:
        """Upload the file; returns the content of ``<name>.result`` (None for no note)."""
        raise NotImplementedError

    def describe_failure(self, entry: Entry, exc: XNATError) -> str:
        return default_failure_text(entry.name, exc)

    def held(self, entry: Entry) -> bool:
        """Whether ``entry`` waits for a rename instead of being sent when closed (a temporary name)."""
        return False

    def ticket_destination(self, entry: Entry) -> dict[str, Any]:
        """Where the file was going, for its spool ticket (what ``xnatfs spool retry`` needs to send it)."""
        return {}

    def server(self) -> str:
        """The server's URL (without credentials), for the spool ticket."""
        return ""

    def sent(self, entry: Entry) -> None:
        """Called after a successful upload (invalidate caches)."""

    # -- the tables ----------------------------------------------------------------------------------

    def node(self, path: str) -> Node | None:
        """The local entry or note at ``path``, or None."""
        with self._lock:
            entry = self._entries.get(path)
            note = self._notes.get(path)
        if entry is not None:
            return entry_node(entry)
        if note is not None:
            return Node(NodeKind.TEXT, path, Stat(NOTE_MODE, len(note.data), note.mtime), data=note.data)
        return None

    def children(self, directory: str) -> list[Node]:
        """The local entries and notes directly inside ``directory``."""
        prefix = directory.rstrip("/") + "/"
        with self._lock:
            paths = [p for p in (*self._entries, *self._notes) if p.startswith(prefix) and "/" not in p[len(prefix):]]
        nodes = [self.node(p) for p in sorted(set(paths))]
        return [n for n in nodes if n is not None]

    def has_children(self, directory: str) -> bool:
        prefix = directory.rstrip("/") + "/"
        with self._lock:
            return any(p.startswith(prefix) for p in (*self._entries, *self._notes))

    def entry(self, path: str) -> Entry | None:
        with self._lock:
            return self._entries.get(path)

    def kept_files(self) -> list[SpoolFile]:
        with self._lock:
            return [e.spool for e in self._entries.values() if e.state is State.KEPT]

    # -- opening -------------------------------------------------------------------------------------

    def start(self, path: str, target: Any, mode: int = 0o644) -> Handle:
        """A new file at ``path`` (a kept file of that name is replaced), open for writing."""
        name = path.rsplit("/", 1)[-1]
        with self._lock:
            old = self._entries.get(path)
            if old is not None and (old.state is State.SENDING or old.writers > 0):
                raise Busy(f"{name} is being written or sent")
            entry = Entry(path, self.spool.new_file(name), target, mode=mode & 0o777 or 0o644)
            entry.writers = 1
            self._entries[path] = entry
        if old is not None:
            old.spool.discard()
        log.debug("%s %s: writing to %s", self.kind, path, entry.spool.path)
        return Handle(self, entry, writable=True)

    def reopen(self, entry: Entry, *, write: bool, truncate: bool) -> Handle:
        """Open an existing local file again: to read it, or to write it again (then it is sent again)."""
        if write:
            with self._lock:
                if entry.state is State.SENDING:
                    raise Busy(f"{entry.name} is being sent")
                if entry.state is State.SENT:
                    raise NotFound(f"{entry.name} was already uploaded")
                entry.state = State.WRITING
                entry.writers += 1
            if truncate:
                entry.spool.truncate(0)
        return Handle(self, entry, writable=write)

    # -- writing -------------------------------------------------------------------------------------

    def write(self, handle: Handle, data: bytes, offset: int) -> int:
        entry = handle.entry
        if not handle.writable:
            raise XNATError("not open for writing")
        handle._check_live()
        with self._lock:
            # a close of one descriptor failed while another stays open and keeps writing (a child that
            # inherited it exited early): the file is being written again, and its next close retries
            if entry.state is State.KEPT and entry.writers > 0 and entry.spool.write_error is None:
                entry.state = State.WRITING
            if entry.state is not State.WRITING:
                raise Busy(f"{entry.name} is being sent")
        entry.dirty = True
        try:
            return entry.spool.write(data, offset)
        except OSError as exc:
            entry.spool.free_space()
            log.error("%s %s: writing to the spool failed after %d bytes: %s", self.kind, entry.path,
                      entry.spool.size, exc.strerror)
            raise spool_write_error(exc) from exc

    def truncate(self, entry: Entry, length: int) -> None:
        if entry.state is not State.WRITING or entry.writers == 0:
            raise Busy(f"{entry.name} is not open for writing")
        entry.dirty = True
        entry.spool.truncate(length)

    def release(self, handle: Handle) -> None:
        entry = handle.entry
        if not handle.writable:
            return
        with self._lock:
            entry.writers = max(0, entry.writers - 1)
            if self._closing:
                return
            last = entry.writers == 0 and entry.state is State.WRITING
            # data lost in the spool (ENOSPC): only the .error stays; the partial copy is worthless
            lost = entry.writers == 0 and entry.state is State.KEPT and entry.spool.write_error is not None
            if lost and self._entries.get(entry.path) is entry:
                del self._entries[entry.path]
        if lost:
            entry.spool.discard()
        if last:
            entry.dirty = True
            try:
                self.attempt(entry, 0)
            except UploadFailed:
                pass  # release cannot report; the .error says it

    # -- the attempt ---------------------------------------------------------------------------------

    def attempt(self, entry: Entry, pid: int) -> None:
        """Check and send ``entry`` if it changed since the last attempt; UploadFailed if it failed."""
        with entry.lock:
            if not entry.dirty or entry.state is not State.WRITING or self.held(entry):
                return
            entry.dirty = False
            try:
                self._check(entry, pid)
                entry.state = State.SENDING
                result = self.send(entry)
            except (NotSent, NotImportable) as exc:
                self._fail(entry, str(exc))
            except XNATError as exc:
                self._fail(entry, self.describe_failure(entry, exc))
            except OSError as exc:  # reading the spool back
                self._fail(entry, f"{entry.name} was not sent: the local copy could not be read ({exc.strerror}).")
            else:
                self._succeed(entry, result)
                return
        raise UploadFailed(self._error_text(entry))

    def _check(self, entry: Entry, pid: int) -> None:
        spool = entry.spool
        if spool.write_error is not None:
            raise SpoolLost(spool_failure_text(entry.name, spool))
        killed = killed_by(pid)
        if killed is not None:
            raise NotSent(f"{entry.name} was not sent: {killed.describe()} before it closed the file. The "
                          f"{spool.size} bytes it wrote are kept here; copy the file again to send it.")
        self.validate(entry)

    def _fail(self, entry: Entry, text: str) -> None:
        with self._lock:
            entry.state = State.KEPT
            self._notes[entry.path + ERROR_SUFFIX] = Note(text.encode("utf-8", "replace") + b"\n", time.time())
        log.error("%s %s not sent: %s", self.kind, entry.path, redact_text(text))
        self._write_ticket(entry, text)

    def _write_ticket(self, entry: Entry, reason: str) -> None:
        if entry.spool.size == 0 or entry.spool.write_error is not None:
            return  # nothing worth keeping: the spool drops it at unmount
        entry.spool.write_ticket({"kind": self.kind, "name": entry.name, "mount_path": entry.path,
                                  "server": self.server(), "reason": redact_text(reason),
                                  "kept_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **self.ticket_destination(entry)})

    def _error_text(self, entry: Entry) -> str:
        with self._lock:
            note = self._notes.get(entry.path + ERROR_SUFFIX)
        return note.data.decode("utf-8", "replace").strip() if note else f"{entry.name} was not sent"

    def _succeed(self, entry: Entry, result: bytes | None) -> None:
        with self._lock:
            entry.state = State.SENT
            if self._entries.get(entry.path) is entry:
                del self._entries[entry.path]
            self._notes.pop(entry.path + ERROR_SUFFIX, None)
            if result is not None:
                self._notes[entry.path + RESULT_SUFFIX] = Note(result, time.time())
        entry.spool.discard()
        self.sent(entry)

    # -- renaming ------------------------------------------------------------------------------------

    def move(self, entry: Entry, path: str, target: Any) -> None:
        """Give a local file a new path and destination (``rename``), then send it if nobody writes it
        any more: a program that writes a temporary file and renames it (rsync, editors' safe save)
        gets the upload's outcome from ``rename``. UploadFailed if it failed (kept, with its ``.error``)."""
        with self._lock:
            if entry.state in (State.SENDING, State.SENT):
                raise Busy(f"{entry.name} is being sent")
            replaced = self._entries.get(path)
            if replaced is not None and replaced is not entry:
                if replaced.state is State.SENDING or replaced.writers > 0:
                    raise Busy(f"{replaced.name} is being written or sent")
                del self._entries[path]
            if self._entries.get(entry.path) is entry:
                del self._entries[entry.path]
            self._notes.pop(entry.path + ERROR_SUFFIX, None)
            self._notes.pop(path + ERROR_SUFFIX, None)
            entry.path, entry.target = path, target
            if entry.state is State.KEPT and entry.spool.write_error is None:
                entry.state = State.WRITING  # a kept file renamed: try again under its new name
            entry.dirty = True
            self._entries[path] = entry
            ready = entry.writers == 0
        if replaced is not None and replaced is not entry:
            replaced.spool.discard()
        if ready:
            self.attempt(entry, 0)

    # -- removing ------------------------------------------------------------------------------------

    def remove(self, path: str) -> bool:
        """``rm`` of a local file or note (always local, never on the server); False if none is there."""
        with self._lock:
            entry = self._entries.get(path)
            if entry is not None:
                if entry.state is State.SENDING or entry.writers > 0:
                    raise Busy(f"{entry.name} is open or being sent")
                del self._entries[path]
                self._notes.pop(path + ERROR_SUFFIX, None)
            elif self._notes.pop(path, None) is None:
                return False
        if entry is not None:
            entry.spool.discard()
        return True

    def close(self) -> list[SpoolFile]:
        """Unmount: the kept files, for the spool to leave on disk. A file still open for writing is
        kept too (never sent half-written); every other spool file is removed."""
        with self._lock:
            self._closing = True
            entries = list(self._entries.values())
            for entry in entries:
                if entry.state in (State.WRITING, State.SENDING):
                    entry.state = State.KEPT
                    if self.held(entry) and entry.writers == 0:
                        why = (f"{entry.name} has a temporary file's name and was never renamed, so it was not "
                               f"sent")
                    else:
                        why = f"{entry.name} was still open for writing when the mount ended; it was not sent"
                    log.warning("%s %s: %s; kept in the spool", self.kind, entry.path, why)
                    self._write_ticket(entry, why)
        kept = [e.spool for e in entries if e.state is State.KEPT and e.spool.size > 0]
        for entry in entries:
            if entry.spool not in kept:
                entry.spool.discard()
        return kept


def entry_node(entry: Entry) -> Node:
    spool = entry.spool
    return Node(NodeKind.LOCAL, entry.path, Stat(_stat.S_IFREG | entry.mode, spool.size, spool.mtime),
                {XATTR_STATE: entry.state.value}, local=entry)


__all__ = ["Outbox", "Entry", "Handle", "State", "Note", "entry_node", "ERROR_SUFFIX", "RESULT_SUFFIX",
           "NOTE_SUFFIXES", "XATTR_STATE"]
