"""DICOM series → NIfTI with dcm2niix, once per series content, kept on local disk.

The NIfTI view (``…/scans/<ID>/nifti/``) and the BIDS view show what dcm2niix makes of a scan's DICOM
resource. Converting is slow (seconds) and its output's sizes must be known before the kernel sees a
listing, so a series is converted at most once: :meth:`Converter.convert` answers from

1. memory (every answer, failures included, by key: a second listing converts nothing again);
2. the disk (``<root>/<key[:2]>/<key>/``: the outputs, ``conversion.log`` and ``manifest.json``), which
   outlives the mount;
3. a conversion: the series' files are read through the model (the mount's one reader; md5 checked
   where the server lists one) into a private work folder under ``root``, dcm2niix runs there with a
   timeout and an environment holding nothing of ours, and the finished folder is renamed into place.

The key is a hash of the series' content (each file's size and md5; the URI where a server lists no
md5), the output base name and the converter's version and arguments, so a changed series gets a new
key and a stale image is never served. Concurrent callers for one key share one conversion
(:meth:`~xnatfs.cache.ttl.TTLCache.get_or_load`); at most ``max_parallel`` conversions run at once.
The disk folder is capped at ``max_bytes`` (oldest conversions removed first).

dcm2niix is the binary in the ``dcm2niix`` PyPI package (a dependency), found from that package, never
from ``PATH``. A conversion that fails (no image made, the tool's error, its timeout) is an answer, not
an exception: :class:`Converted` with ``ok`` False and the tool's log; reading the series from the
server can still raise :mod:`xnatfs.errors` classes (not remembered: the next call tries again).

Thread-safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from xnatfs.cache.ttl import TTLCache
from xnatfs.errors import Busy, ChecksumMismatch, RequestTimeout
from xnatfs.localpaths import default_cache_folder, private_dir
from xnatfs.model.records import FileInfo

log = logging.getLogger(__name__)

#: dcm2niix's arguments: gzipped NIfTI, a BIDS sidecar, anonymized (no names or dates), overwrite on a name clash
ARGUMENTS = ("-z", "y", "-b", "y", "-ba", "y", "-w", "1")
MANIFEST = "manifest.json"
LOG_NAME = "conversion.log"
#: the extensions dcm2niix writes that a view shows
OUTPUT_SUFFIXES = (".nii.gz", ".nii", ".json", ".bval", ".bvec")
_SAFE_BASE = re.compile(r"[^A-Za-z0-9_-]+")


def dcm2niix_binary() -> Path:
    """The dcm2niix executable of the ``dcm2niix`` Python package (not whatever ``PATH`` holds)."""
    import dcm2niix  # the PyPI package: a wheel with the binary

    return Path(dcm2niix.bin_path)


def dcm2niix_version() -> str:
    try:
        import dcm2niix

        return str(dcm2niix.__version__)
    except ImportError:
        return "absent"


def default_root(cache_dir: Path | None = None) -> Path:
    """``<cache_dir>/views``, else ``$XDG_CACHE_HOME/xnatfs/views`` (``~/.cache/xnatfs/views``)."""
    return default_cache_folder("views", cache_dir)


def safe_base(text: str) -> str:
    """A file base name for dcm2niix's ``-f`` (no ``%`` patterns, no path characters)."""
    return _SAFE_BASE.sub("_", text).strip("_")[:80] or "series"


@dataclass(frozen=True)
class Converted:
    """What dcm2niix made of one series: ``files`` (name, size) in ``folder``, its log; ``ok`` False
    when it made no image (then ``files`` is empty and ``log`` says why)."""

    key: str
    ok: bool
    files: tuple[tuple[str, int], ...]
    log: bytes
    folder: Path | None = None

    def path(self, name: str) -> Path:
        if self.folder is None or name not in dict(self.files):
            raise KeyError(name)
        return self.folder / name

    def named(self, suffix: str) -> list[str]:
        return [name for name, _ in self.files if name.endswith(suffix)]


@dataclass(frozen=True)
class ConverterSettings:
    """Where conversions are kept, how many may run at once, how long one may take, the disk cap."""

    root: Path
    timeout: float = 300.0
    max_parallel: int = 2
    max_bytes: int = 4 * 1024 ** 3
    wait_timeout: float = 600.0
    #: files of a series read at once (each one request of the mount's reader)
    read_workers: int = 4


class Converter:
    """Converts DICOM series once (see module docstring). ``read_whole(info)`` returns a file's bytes."""

    def __init__(self, read_whole: Callable[[FileInfo], bytes], settings: ConverterSettings) -> None:
        """No I/O: the root folder is made (0700) at the first conversion."""
        self.settings = settings
        #: a server file's bytes, read through the model (the views also read small files with it)
        self.read_whole = read_whole
        self._answers: TTLCache = TTLCache(4096, 7 * 24 * 3600.0, wait_timeout=settings.wait_timeout)
        self._slots = threading.BoundedSemaphore(max(1, settings.max_parallel))
        self._root_lock = threading.Lock()
        self._root: Path | None = None
        #: conversions run by this process (tests and benchmarks count them)
        self.conversions = 0

    # -- public ---------------------------------------------------------------------------------------

    def key(self, files: Sequence[FileInfo], base: str) -> str:
        digest = hashlib.sha256()
        digest.update(f"dcm2niix {dcm2niix_version()} {' '.join(ARGUMENTS)}\n{safe_base(base)}\n".encode())
        for info in sorted(files, key=lambda f: (f.relpath, f.uri)):
            stamp = info.md5.lower() if info.md5 else info.uri
            digest.update(f"{info.size}\t{stamp}\n".encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    def known(self, files: Sequence[FileInfo], base: str) -> Converted | None:
        """The answer for this series if it is in memory (no I/O, no conversion)."""
        return self._answers.get(self.key(files, base))

    def convert(self, files: Sequence[FileInfo], base: str) -> Converted:
        """The conversion of the series ``files`` (one DICOM resource) with output base name ``base``."""
        key = self.key(files, base)
        answer = self._answers.get_or_load(key, lambda: self._load(key, files, safe_base(base)))
        if answer.ok and answer.folder is not None and not answer.folder.is_dir():  # evicted from disk since
            self._answers.pop(key)
            answer = self._answers.get_or_load(key, lambda: self._load(key, files, safe_base(base)))
        return answer

    # -- disk -----------------------------------------------------------------------------------------

    def _root_dir(self) -> Path:
        with self._root_lock:
            if self._root is None:
                self._root = private_dir(self.settings.root, what="views cache directory")
            return self._root

    def _folder(self, key: str) -> Path:
        return self._root_dir() / key[:2] / key

    def _load(self, key: str, files: Sequence[FileInfo], base: str) -> Converted:
        found = self._from_disk(key)
        if found is not None:
            return found
        if not self._slots.acquire(timeout=self.settings.wait_timeout):
            raise Busy(f"No conversion slot became free within {self.settings.wait_timeout:.0f} s")
        try:
            found = self._from_disk(key)  # another process may have finished it meanwhile
            return found if found is not None else self._run(key, files, base)
        finally:
            self._slots.release()

    def _from_disk(self, key: str) -> Converted | None:
        folder = self._folder(key)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            listed = tuple((str(name), int(size)) for name, size in manifest["files"])
            for name, size in listed:
                info = os.lstat(folder / name)
                if info.st_size != size or not os.path.isfile(folder / name) or os.path.islink(folder / name):
                    raise ValueError(f"{name} changed")
            text = (folder / LOG_NAME).read_bytes()
        except (OSError, ValueError, KeyError, TypeError):
            return None
        now = time.time()
        try:
            os.utime(folder, (now, now))  # recently used: evicted last
        except OSError:
            pass
        return Converted(key, bool(listed), listed, text, folder)

    # -- converting -----------------------------------------------------------------------------------

    def _run(self, key: str, files: Sequence[FileInfo], base: str) -> Converted:
        root = self._root_dir()
        work = Path(tempfile.mkdtemp(prefix="work-", dir=root))
        try:
            source, output = work / "dicom", work / "out"
            source.mkdir()
            output.mkdir()
            self._fetch(sorted(files, key=lambda f: f.relpath), source, base)
            started = time.monotonic()
            text, made = self._dcm2niix(source, output, base)
            self.conversions += 1
            log.info("dcm2niix converted %s (%d files) in %.1f s", base, len(files), time.monotonic() - started)
            listed = tuple(sorted((p.name, p.stat().st_size) for p in output.iterdir()
                                  if p.is_file() and p.name.endswith(OUTPUT_SUFFIXES)))
            if not any(name.endswith((".nii.gz", ".nii")) for name, _ in listed):
                log.warning("dcm2niix made no image of the series %s (%d files): %s", base, len(files),
                            _last_line(text) or "no message")
                return Converted(key, False, (), text + b"\nxnatfs: no NIfTI image was made of this series\n")
            if not made:
                log.info("dcm2niix reported a problem with %s but made an image", base)
            (output / LOG_NAME).write_bytes(text)
            (output / MANIFEST).write_text(json.dumps({"files": listed, "base": base}))
            for path in output.iterdir():
                os.chmod(path, 0o600)
            folder = self._folder(key)
            folder.parent.mkdir(mode=0o700, exist_ok=True)
            try:
                os.replace(output, folder)
            except OSError:  # another process put it there first: use theirs
                found = self._from_disk(key)
                if found is not None:
                    return found
                raise
            self._evict(keep=folder)
            return Converted(key, True, listed, text, folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _fetch(self, files: Sequence[FileInfo], source: Path, base: str) -> None:
        """Read the series into ``source`` (``000000.dcm`` …: no server name becomes a local path), a few
        files at a time, all within the conversion's timeout (RequestTimeout, not remembered, if not)."""
        deadline = time.monotonic() + self.settings.timeout

        def fetch(item: tuple[int, FileInfo]) -> None:
            index, info = item
            if time.monotonic() > deadline:
                raise RequestTimeout(f"Reading the series {base} took longer than {self.settings.timeout:.0f} s")
            data = self.read_whole(info)
            if info.md5 and hashlib.md5(data, usedforsecurity=False).hexdigest() != info.md5.lower():
                raise ChecksumMismatch(f"{info.relpath}: the bytes read do not match the server's md5")
            (source / f"{index:06d}.dcm").write_bytes(data)

        workers = max(1, min(self.settings.read_workers, len(files)))
        with ThreadPoolExecutor(workers, thread_name_prefix="xnatfs-series") as pool:
            futures = [pool.submit(fetch, item) for item in enumerate(files)]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _dcm2niix(self, source: Path, output: Path, base: str) -> tuple[bytes, bool]:
        """Run dcm2niix; its output and whether it exited 0. A timeout or a missing binary is a failure
        described in the returned log."""
        command = [str(dcm2niix_binary()), *ARGUMENTS, "-f", base, "-o", str(output), str(source)]
        try:
            done = subprocess.run(command, capture_output=True, timeout=self.settings.timeout, cwd=output,
                                  env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            return (exc.stdout or b"") + f"\nxnatfs: dcm2niix took longer than {self.settings.timeout:.0f} s; " \
                                         f"stopped\n".encode(), False
        except (OSError, ImportError) as exc:
            return f"xnatfs: dcm2niix could not be run: {exc}\n".encode(), False
        text = done.stdout + done.stderr
        return text.replace(str(source).encode(), b"<series>").replace(str(output).encode(), b"<output>"), \
            done.returncode == 0

    def _evict(self, keep: Path) -> None:
        """Keep the folder under ``max_bytes``: remove the least recently used conversions first."""
        root = self._root_dir()
        entries = []
        for sub in root.iterdir():
            if sub.is_symlink() or not sub.is_dir() or sub.name.startswith("work-"):
                continue
            for folder in sub.iterdir():
                if folder.is_symlink() or not folder.is_dir():
                    continue
                size = sum(p.lstat().st_size for p in folder.iterdir())
                entries.append((folder.stat().st_mtime, size, folder))
        total = sum(size for _, size, _ in entries)
        for _, size, folder in sorted(entries, key=lambda e: e[0]):
            if total <= self.settings.max_bytes:
                break
            if folder != keep:
                shutil.rmtree(folder, ignore_errors=True)
                total -= size


def _last_line(text: bytes) -> str:
    lines = [line for line in text.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


__all__ = ["Converter", "ConverterSettings", "Converted", "dcm2niix_binary", "default_root", "safe_base",
           "LOG_NAME", "ARGUMENTS"]
