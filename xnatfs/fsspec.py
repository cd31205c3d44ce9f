"""The ``xnat`` fsspec filesystem: the mount's tree for the Python data stack, and for Dask workers.

``fsspec.filesystem("xnat", url="https://xnat.example.org", user="alice")`` (the protocol is
registered through the ``fsspec.specs`` entry point) gives every fsspec-aware library — Dask,
pandas, xarray, zarr, nibabel or pydicom through ``fs.open`` — the paths of the mount
(``projects/P/subjects/S/experiments/E/scans/1/resources/DICOM/f.dcm``, with or without
``xnat://`` and a leading ``/``), without a mount and without a copy.

It is a door over the mount's own core, not a second client: names, listings and their TTL caching
are :class:`~xnatfs.vfs.filesystem.Filesystem`'s (so ``ls`` here and ``ls`` in a mount show the same
names), reads go through the connection's one ranged block reader (``open`` is a seekable file over
it, ``cat_file`` with ``start``/``end`` reads just that range), ``get`` checks the server's md5 as
it streams (:func:`~xnatfs.model.transfer.stream_to_file`), and writes go through the object model
(``put``/``pipe`` upload into a resource, ``mkdir`` of ``…/resources/<label>`` makes a resource,
``rm`` deletes files in resources and nothing else).

Distributed use: the filesystem pickles to its constructor arguments (fsspec's way, as s3fs carries
its keys), so a Dask worker rebuilds it and connects on its first call. Nothing is sent to the
server in the constructor; a forked child makes its own connection. A password given explicitly
travels inside the pickle (in memory and on the wire to the workers; see docs/distributed.md for
the risk and the alternative: ``user=`` only, with ``XNATFS_PASSWORD`` or a netrc file on the
workers); it is held in a :class:`HiddenPassword`, so no ``repr``, log line or ``storage_options``
printout shows it.

Errors are :mod:`xnatfs.errors` classes turned, at this boundary, into the built-in ``OSError``
subclasses fsspec and its users expect (``FileNotFoundError`` for ENOENT, ``PermissionError`` for
EACCES/EPERM/EROFS, …), with the XNAT error chained as the cause.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import hashlib
import hmac
import io
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from fsspec.spec import AbstractFileSystem

from xnatfs.errors import NotAllowed, NotFound, XNATError
from xnatfs.model.connect import Connection, connect
from xnatfs.model.files import RemoteReader
from xnatfs.model.records import ResourceInfo
from xnatfs.model.transfer import stream_to_file
from xnatfs.settings import CacheSettings, Settings, Timeouts
from xnatfs.vfs.diskcache import DiskCache
from xnatfs.vfs.filesystem import Filesystem, OpenFile
from xnatfs.vfs.naming import decode_name, split_path
from xnatfs.vfs.nodes import XATTR_ID, XATTR_URI, XATTR_XSITYPE, Node, NodeKind
from xnatfs.vfs.resource_writes import RESOURCES, folder_relpath
from xnatfs.vfs.tree import TreeSettings
from xnatfs.vfs.writes import WriteSettings

PROTOCOL = "xnat"

#: a random key of this process: a password's repr shows a keyed hash that tells two passwords apart
#: (fsspec's instance cache keys on reprs) and can be reversed by no one, not even in another process
_REPR_KEY = os.urandom(16)

_OS_ERRORS: dict[int, type[OSError]] = {
    _errno.ENOENT: FileNotFoundError,
    _errno.EEXIST: FileExistsError,
    _errno.EISDIR: IsADirectoryError,
    _errno.ENOTDIR: NotADirectoryError,
    _errno.EACCES: PermissionError,
    _errno.EPERM: PermissionError,
    _errno.EROFS: PermissionError,
    _errno.ETIMEDOUT: TimeoutError,
}


class HiddenPassword:
    """A password that never shows itself: ``repr``/``str`` give ``***`` and a keyed hash (fsspec's
    instance cache tells filesystems apart by the repr of their options). Pickles to the plain password
    string, so it reaches the workers (see the module docstring), where the filesystem's constructor
    hides it again, and an unpickled filesystem in the same process is the same instance."""

    __slots__ = ("_value",)

    def __init__(self, value: str | HiddenPassword) -> None:
        self._value = value.reveal() if isinstance(value, HiddenPassword) else str(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        tag = hmac.new(_REPR_KEY, self._value.encode("utf-8", "surrogatepass"), "sha256").hexdigest()[:12]
        return f"HiddenPassword('***', tag={tag})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HiddenPassword) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(repr(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return str, (self._value,)


def os_error(exc: XNATError) -> OSError:
    """The built-in ``OSError`` subclass for an XNAT error's errno (its message is already redacted)."""
    cls = _OS_ERRORS.get(exc.errno, OSError)
    return cls(exc.errno, str(exc))


@contextlib.contextmanager
def _as_os_errors() -> Iterator[None]:
    try:
        yield
    except XNATError as exc:
        raise os_error(exc) from exc


class _Core:
    """One process's connection and mount core (built on first use, never in a constructor)."""

    def __init__(self, connection: Connection, filesystem: Filesystem) -> None:
        self.connection = connection
        self.filesystem = filesystem
        self.pid = os.getpid()
        self.closed = False

    def close(self) -> None:
        self.closed = True
        try:
            self.filesystem.close()
        finally:
            self.connection.close()


#: this process's cores by the options they were made with (XNATFileSystem._core_key), and a lock per key
_CORES: dict[tuple[Any, ...], _Core] = {}
_KEY_LOCKS: dict[tuple[Any, ...], threading.Lock] = {}
_KEY_LOCKS_LOCK = threading.Lock()


def _lock_of(key: tuple[Any, ...]) -> threading.Lock:
    with _KEY_LOCKS_LOCK:
        return _KEY_LOCKS.setdefault(key, threading.Lock())


def _forget_cores_after_fork() -> None:
    """In a forked child: the parent's cores are not ours (their sockets and threads stay the parent's),
    and a lock another parent thread held at the fork would never be released."""
    global _KEY_LOCKS_LOCK
    _CORES.clear()
    _KEY_LOCKS.clear()
    _KEY_LOCKS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_cores_after_fork)


class _Released:
    """An open mount file that tells the core when it is closed (its count of open files)."""

    def __init__(self, filesystem: Filesystem, handle: OpenFile, name: str) -> None:
        self._filesystem = filesystem
        self._handle: OpenFile | None = handle
        self.size = handle.size
        self.name = name

    def read(self, offset: int, size: int) -> bytes:
        if self._handle is None:
            raise ValueError("I/O operation on closed file")
        return self._handle.read(offset, size)

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            self._filesystem.release(handle)


class _UploadOnClose(io.BufferedRandom):
    """``open(path, "wb")``: written to a local temporary file, uploaded whole when closed (XNAT
    stores files whole); an upload's failure is ``close()``'s error. A ``with`` block that ends in an
    exception uploads nothing."""

    def __init__(self, fs: XNATFileSystem, path: str) -> None:
        super().__init__(tempfile.TemporaryFile(prefix="xnatfs-put-", buffering=0))  # type: ignore[arg-type]
        self._fs = fs
        self._target = path
        self._sent = False

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self._sent = True  # the writer failed: its partial file is not uploaded
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._sent:
                self._sent = True
                self.flush()
                self.seek(0)
                self._fs._upload(self._target, self.raw)  # type: ignore[arg-type]
        finally:
            super().close()


class XNATFileSystem(AbstractFileSystem):
    """The ``xnat`` protocol (see the module docstring).

    ``url``: the server; ``user``/``password``: credentials by the library's precedence (explicit >
    ``user`` with ``XNATFS_PASSWORD`` > netrc (``netrc_file`` or ``~/.netrc``) > anonymous);
    ``metadata_ttl``: seconds a listing is trusted (the mount's ``--metadata-ttl``); ``timeout``:
    seconds any request may wait for the server; ``verify``/``ca_bundle``: TLS checking as in
    :func:`xnatfs.connect`; ``cache_dir``/``cache_size``: the mount's ``--cache-dir``/``--cache-size``
    (complete copies of files read whole, checked by md5; the workers of one node can share one).
    """

    protocol = PROTOCOL
    root_marker = ""
    cachable = True
    _storage_options: dict[str, Any] = {}  # replaced (never changed) by the setter below

    def __init__(self, url: str | None = None, user: str | None = None, password: str | HiddenPassword | None = None,
                 *, netrc_file: str | None = None, metadata_ttl: float = 60.0, timeout: float = 30.0,
                 verify: bool | str = True, ca_bundle: str | None = None, cache_dir: str | None = None,
                 cache_size: int = 4 * 1024**3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not url:
            raise ValueError("The xnat filesystem needs the server's url= (e.g. url='https://xnat.example.org')")
        self.url = url.rstrip("/")
        self.user = user
        self._password = None if password is None else HiddenPassword(password)
        self.netrc_file = netrc_file
        self.metadata_ttl = float(metadata_ttl)
        self.timeout = float(timeout)
        self.verify = verify
        self.ca_bundle = ca_bundle
        self.cache_dir = cache_dir
        self.cache_size = int(cache_size)
        #: the options a connection depends on: filesystems of this process with the same ones share it
        self._core_key = (self.url, user, repr(self._password), netrc_file, self.metadata_ttl, self.timeout,
                          repr(verify), ca_bundle, cache_dir, self.cache_size)
        self._core: _Core | None = None  # the shared core last used (a fast path; _CORES decides)

    # fsspec's metaclass stores the constructor's keyword arguments here (they are what a pickle holds):
    # the password is kept as a HiddenPassword, so printing the options never shows it.
    @property
    def storage_options(self) -> dict[str, Any]:
        return self._storage_options

    @storage_options.setter
    def storage_options(self, options: dict[str, Any]) -> None:
        options = dict(options)
        if isinstance(options.get("password"), str):
            options["password"] = HiddenPassword(options["password"])
        self._storage_options = options

    def __repr__(self) -> str:
        return f"<XNATFileSystem {self.url} user={self.user or '(netrc or anonymous)'}>"

    @property
    def fsid(self) -> str:
        return f"xnat_{hashlib.sha256(f'{self.url}|{self.user}'.encode()).hexdigest()[:16]}"

    # -- the connection (lazy, one per process and set of options) --------------------------------------

    def _here(self) -> _Core:
        """This process's connection and mount core for these options: made on first use (again after a
        fork or a close), and shared by every filesystem with the same options in the process. fsspec
        keeps one instance per thread; sharing the core gives a Dask worker's threads one login, one
        set of cached listings and one memory budget for reads."""
        core = self._core
        if core is not None and core.pid == os.getpid() and not core.closed:
            return core
        with _lock_of(self._core_key):
            core = _CORES.get(self._core_key)
            if core is None or core.pid != os.getpid() or core.closed:
                core = _CORES[self._core_key] = self._connect()
        self._core = core
        return core

    def _mount(self) -> Filesystem:
        return self._here().filesystem

    def _connect(self) -> _Core:
        settings = Settings(timeouts=Timeouts(connect=min(10.0, self.timeout), read=self.timeout),
                            cache=CacheSettings(ttl=self.metadata_ttl))
        with _as_os_errors():
            connection = connect(self.url, self.user, None if self._password is None else self._password.reveal(),
                                        netrc_file=self.netrc_file, settings=settings, load_schemas=False,
                                        verify=self.verify, ca_bundle=self.ca_bundle)
        try:
            with _as_os_errors():
                cache = DiskCache.create(self.cache_dir, self.cache_size) if self.cache_dir else None
        except BaseException:
            connection.close()
            raise
        # read_only here means only "no spool": writes go through the object model below, not the outbox
        filesystem = Filesystem(connection, TreeSettings(ttl=self.metadata_ttl, maxsize=settings.cache.maxsize),
                                disk_cache=cache, write_settings=WriteSettings(read_only=True))
        return _Core(connection, filesystem)

    def close(self) -> None:
        """Log out and drop this process's connection for these options (every filesystem with the same
        options in this process shares it); a later call connects again."""
        with _lock_of(self._core_key):
            core = _CORES.pop(self._core_key, None)
        self._core = None
        if core is not None and core.pid == os.getpid():
            core.close()

    # -- paths ------------------------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(os.fspath(path))
        if path.startswith(PROTOCOL + "://"):
            path = path[len(PROTOCOL) + 3:]
        elif path.startswith(PROTOCOL + "::"):
            path = path[len(PROTOCOL) + 2:]
        return "/".join(split_path(path))

    @staticmethod
    def _mount_path(path: str) -> str:
        return "/" + "/".join(split_path(path))

    def _lookup(self, path: str) -> Node:
        with _as_os_errors():
            return self._mount().lookup(self._mount_path(self._strip_protocol(path)))

    # -- listing ----------------------------------------------------------------------------------------

    @staticmethod
    def _details(node: Node, *, looked_up: bool = False) -> dict[str, Any]:
        """fsspec's entry for a node: name, size (None for an ``xnat.json``/``xnat.xml`` in a listing:
        its size is known once it is fetched, which ``info`` does), type, mtime, and the md5, URI, ID and
        type XNAT gives."""
        sized = looked_up or node.is_dir or node.stat_is_final
        entry: dict[str, Any] = {"name": node.path.lstrip("/"), "size": node.stat.size if sized else None,
                                 "type": "directory" if node.is_dir else "file", "mtime": node.stat.mtime}
        if node.file is not None and node.file.md5:
            entry["md5"] = node.file.md5
        for key, attr in (("uri", XATTR_URI), ("xnat_id", XATTR_ID), ("xsitype", XATTR_XSITYPE)):
            if attr in node.xattrs:
                entry[key] = node.xattrs[attr]
        return entry

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        mount_path = self._mount_path(self._strip_protocol(path))
        with _as_os_errors():
            core = self._mount()
            node = core.lookup(mount_path)
            nodes = core.listdir(mount_path) if node.is_dir else [node]
        entries = [self._details(n, looked_up=not node.is_dir) for n in nodes]
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._details(self._lookup(path), looked_up=True)  # a document's lookup sizes it

    def modified(self, path: str) -> datetime:
        return datetime.fromtimestamp(self._lookup(path).stat.mtime, tz=timezone.utc)

    def du(self, path: str, total: bool = True, maxdepth: int | None = None, withdirs: bool = False,
           **kwargs: Any) -> Any:
        """Sizes below ``path``; the ``xnat.json``/``xnat.xml`` a listing leaves unsized are sized (fetched)."""
        found = self.find(path, maxdepth=maxdepth, withdirs=withdirs, detail=True, **kwargs)
        sizes = {name: info["size"] if info["size"] is not None else self.info(name)["size"]
                 for name, info in found.items()}
        return sum(sizes.values()) if total else sizes

    def invalidate_cache(self, path: str | None = None) -> None:
        """Forget cached listings (all of them: the mount's caches are keyed by server path, not by
        this path); the next call asks the server."""
        core = _CORES.get(self._core_key)
        if core is not None and core.pid == os.getpid() and not core.closed:
            core.filesystem.forget_all()

    # -- reading ----------------------------------------------------------------------------------------

    def _open_node(self, path: str) -> _Released:
        mount_path = self._mount_path(self._strip_protocol(path))
        with _as_os_errors():
            filesystem = self._mount()
            return _Released(filesystem, filesystem.open(mount_path), mount_path)

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, autocommit: bool = True,
              cache_options: dict[str, Any] | None = None, **kwargs: Any) -> IO[bytes]:
        """Read: a seekable file over the mount's ranged reader (a seek costs one small ranged request).
        Write (``wb``): uploaded into its resource when closed (fails unless the path is in a resource)."""
        if "a" in mode or "+" in mode:
            raise PermissionError(_errno.EPERM, f"{path}: XNAT stores files whole; open it with 'wb' to replace it")
        if "r" in mode:
            handle = self._open_node(path)
            return io.BufferedReader(RemoteReader(handle), buffer_size=block_size or 64 * 1024)  # type: ignore[arg-type]
        if "x" in mode and self.exists(path):
            raise FileExistsError(_errno.EEXIST, f"{path} exists")
        self._upload_target(path)  # refuse before anything is written
        return _UploadOnClose(self, path)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        handle = self._open_node(path)
        try:
            return self._read_range(handle, start, end)
        finally:
            handle.close()

    @staticmethod
    def _read_range(handle: _Released, start: int | None, end: int | None) -> bytes:
        """Bytes ``[start, end)`` with Python's meaning of None and negative offsets (fsspec's)."""
        size = handle.size
        start = 0 if start is None else (max(0, size + start) if start < 0 else min(start, size))
        end = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
        with _as_os_errors():
            return handle.read(start, end - start) if end > start else b""

    def cat_ranges(self, paths: list[str], starts: int | list[int | None] | None,
                   ends: int | list[int | None] | None, max_gap: int | None = None, on_error: str = "return",
                   **kwargs: Any) -> list[bytes | Exception]:
        """Each range of each path; a path named several times is opened once (one reader, its blocks
        shared between the ranges)."""
        count = len(paths)
        starts_list = list(starts) if isinstance(starts, list) else [starts] * count
        ends_list = list(ends) if isinstance(ends, list) else [ends] * count
        if len(starts_list) != count or len(ends_list) != count:
            raise ValueError("paths, starts and ends must have the same length")
        handles: dict[str, _Released | Exception] = {}
        out: list[bytes | Exception] = []
        try:
            for path, start, end in zip(paths, starts_list, ends_list):
                try:
                    handle = handles.get(path)
                    if handle is None:
                        try:
                            handle = handles[path] = self._open_node(path)
                        except OSError as exc:
                            handles[path] = exc
                            raise
                    if isinstance(handle, Exception):
                        raise handle
                    out.append(self._read_range(handle, start, end))
                except OSError as exc:
                    if on_error != "return":
                        raise
                    out.append(exc)
        finally:
            for handle in handles.values():
                if isinstance(handle, _Released):
                    handle.close()
        return out

    def get_file(self, rpath: str, lpath: str, callback: Any = None, outfile: Any = None, **kwargs: Any) -> None:
        """Download: a server file is streamed to ``lpath`` with its md5 (and size) checked against the
        server's listing (a mismatch leaves no file); a document is written as the mount shows it."""
        node = self._lookup(rpath)
        if node.is_dir:
            if outfile is None:
                os.makedirs(lpath, exist_ok=True)
            return
        if outfile is not None or node.kind is not NodeKind.FILE or node.file is None:
            with self.open(rpath, "rb") as source:
                if outfile is not None:
                    _copy(source, outfile)
                else:
                    with open(lpath, "wb") as target:
                        _copy(source, target)
            return
        session = self._here().connection.session
        progress = None
        if callback is not None and hasattr(callback, "set_size"):
            callback.set_size(node.file.size)
            progress = lambda done, _total: callback.absolute_update(done)  # noqa: E731
        with _as_os_errors():
            stream_to_file(session, node.file.uri, Path(lpath), expected_md5=node.file.md5,
                           expected_size=node.file.size, progress=progress)

    # -- writing ----------------------------------------------------------------------------------------

    def _upload_target(self, path: str) -> tuple[ResourceInfo, str, bool]:
        """Where a file written at ``path`` goes: its resource, its path inside it, and whether it replaces a
        file. The nearest existing folder above it must be a resource or a folder of one; folders below
        that need not exist (XNAT makes them with the file)."""
        parts = split_path(self._strip_protocol(path))
        with _as_os_errors():
            filesystem = self._mount()
            try:
                node = filesystem.lookup("/" + "/".join(parts))
            except NotFound:
                node = None
            if node is not None:
                if node.kind is NodeKind.FILE and node.file is not None and node.resource is not None:
                    return node.resource, node.file.relpath, True
                raise NotAllowed(f"{path} is not a file in a resource; it cannot be written")
            for depth in range(len(parts) - 1, 0, -1):
                try:
                    parent = filesystem.lookup("/" + "/".join(parts[:depth]))
                except NotFound:
                    continue
                where = folder_relpath(parent)
                if where is None:
                    break
                resource, relpath = where
                below = [decode_name(p) for p in parts[depth:]]
                return resource, "/".join([relpath, *below] if relpath else below), False
            raise NotAllowed(f"Files can only be written into a resource (…/resources/<label>/…): {path}")

    def _upload(self, path: str, source: str | os.PathLike[str] | IO[bytes] | bytes) -> None:
        resource, relpath, exists = self._upload_target(path)
        filesystem = self._mount()
        with _as_os_errors():
            try:
                filesystem.source.object_of(resource).put_file(source, relpath, overwrite=exists)
            finally:
                filesystem.source.forget_files(resource.scope_uri)

    def put_file(self, lpath: str, rpath: str, callback: Any = None, mode: str = "overwrite", **kwargs: Any) -> None:
        """Upload a local file into a resource (replacing a file of that name, unless ``mode='create'``);
        a local directory needs nothing (XNAT makes folders with their files)."""
        if os.path.isdir(lpath):
            return
        if mode == "create" and self.exists(rpath):
            raise FileExistsError(_errno.EEXIST, f"{rpath} exists")
        self._upload(rpath, Path(lpath))

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        if mode == "create" and self.exists(path):
            raise FileExistsError(_errno.EEXIST, f"{path} exists")
        self._upload(path, bytes(value))

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """``…/resources/<label>`` makes a resource; a folder inside a resource needs nothing (it exists on
        the server once a file is put in it); anything else is refused (XNAT has nowhere to keep it)."""
        parts = split_path(self._strip_protocol(path))
        with _as_os_errors():
            filesystem = self._mount()
            try:
                filesystem.lookup("/" + "/".join(parts))
                return
            except NotFound:
                pass
            parent = filesystem.lookup("/" + "/".join(parts[:-1])) if len(parts) > 1 else None
            if parent is not None and parent.kind is NodeKind.COLLECTION and parent.collection == RESOURCES \
                    and parent.obj is not None:
                filesystem.connection.writer.create_resource(parent.obj.uri, decode_name(parts[-1]))
                filesystem.forget_all()
                return
            self._upload_target(path + "/-")  # raises unless inside a resource

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        if not exist_ok and self.exists(path):
            raise FileExistsError(_errno.EEXIST, f"{path} exists")
        self.mkdir(path)

    def rmdir(self, path: str) -> None:
        """Folders are not removed (a folder of a resource goes with its last file; resources are kept)."""
        node = self._lookup(path)
        if not node.is_dir:
            raise NotADirectoryError(_errno.ENOTDIR, f"Not a directory: {path}")

    def rm_file(self, path: str) -> None:
        node = self._lookup(path)
        if node.kind is not NodeKind.FILE or node.file is None or node.resource is None:
            raise PermissionError(_errno.EACCES, f"Only files in resources can be removed: {path}")
        filesystem = self._mount()
        with _as_os_errors():
            try:
                filesystem.connection.writer.delete_file(node.file.uri)
            finally:
                filesystem.source.forget_files(node.resource.scope_uri)

    def _rm(self, path: str) -> None:
        if self._lookup(path).is_dir:
            return
        self.rm_file(path)

    def rm(self, path: str | list[str], recursive: bool = False, maxdepth: int | None = None) -> None:
        """Remove files in resources. Every path (with ``recursive``, everything below it) is checked
        first: if any file is not in a resource, nothing is removed. Folders stay."""
        paths = self.expand_path(path, recursive=recursive, maxdepth=maxdepth)
        files = []
        for p in paths:
            node = self._lookup(p)
            if node.is_dir:
                if not recursive:
                    raise IsADirectoryError(_errno.EISDIR, f"{p} is a directory (pass recursive=True)")
                continue
            if node.kind is not NodeKind.FILE or node.file is None or node.resource is None:
                raise PermissionError(_errno.EACCES, f"Only files in resources can be removed: {p}; nothing was "
                                      "removed")
            files.append(p)
        for p in files:
            self.rm_file(p)


def _copy(source: IO[bytes], target: IO[bytes], chunk: int = 1 << 20) -> None:
    while True:
        data = source.read(chunk)
        if not data:
            return
        target.write(data)


__all__ = ["XNATFileSystem", "HiddenPassword", "PROTOCOL", "os_error"]
