"""Issue 18, row 2: the disk cache is private and trusts nothing it finds in its folder.

Real files in a temporary folder (no sockets): modes under umask 022, a folder of another user or one
others can write refused, eviction that never follows a planted symlink out of the cache, and an entry
of the right size but the wrong content never served.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from xnatfs.errors import InsecureCacheDir
from xnatfs.vfs.diskcache import DiskCache

pytestmark = pytest.mark.unit


def store(cache: DiskCache, key: str, data: bytes, md5: str = "") -> None:
    writer = cache.writer(key, len(data), md5)
    assert writer is not None
    writer.write(0, data)
    writer.finish()


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_entries_are_0600_in_0700_folders_whatever_the_umask(tmp_path: Path, umask_022: None) -> None:
    cache = DiskCache.create(tmp_path / "cache", 1 << 20)
    key = DiskCache.key("/data/f", 5)
    store(cache, key, b"hello")
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    folders = [tmp_path / "cache", *(p for p in (tmp_path / "cache").rglob("*") if p.is_dir())]
    assert len(files) == 1 and mode(files[0]) == 0o600
    assert len(folders) == 2 and {mode(p) for p in folders} == {0o700}


def test_an_existing_cache_readable_by_others_is_made_private(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    DiskCache.create(folder, 1 << 20)
    assert mode(folder) == 0o700


@pytest.mark.parametrize("case", ["other-owner", "group-writable", "world-writable", "symlink"])
def test_a_cache_folder_others_control_is_refused_with_the_fix(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "cache"
    if case == "symlink":
        (tmp_path / "real").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "real")
    else:
        folder.mkdir(mode=0o700)
        if case == "other-owner":
            os.chown(folder, 65534, 65534)
        else:
            os.chmod(folder, 0o770 if case == "group-writable" else 0o707)
    with pytest.raises(InsecureCacheDir) as info:
        DiskCache.create(folder, 1 << 20)
    message = str(info.value)
    assert str(folder) in message
    assert {"other-owner": "belongs to user id 65534", "group-writable": f"chmod 700 {folder}",
            "world-writable": f"chmod 700 {folder}", "symlink": "symbolic link"}[case] in message
    assert info.value.errno == 13


def test_eviction_never_follows_a_symlink_out_of_the_cache(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = [outside / f"{i:064x}.data" for i in range(3)]
    for victim in victims:
        victim.write_bytes(b"v" * 4000)
    cache = DiskCache.create(tmp_path / "cache", 10_000)
    (tmp_path / "cache" / "zz").symlink_to(outside)  # a planted link to a folder of .data files
    (tmp_path / "cache" / "ab").mkdir(mode=0o700)
    (tmp_path / "cache" / "ab" / ("ab" + "0" * 62 + ".data")).symlink_to(victims[0])  # and to one file
    for i in range(4):
        store(cache, DiskCache.key(f"/data/f{i}", 4000), b"c" * 4000)  # 16,000 > 10,000: evicts
    assert all(victim.read_bytes() == b"v" * 4000 for victim in victims)
    assert cache.total <= 10_000


def test_an_entry_of_the_right_size_but_the_wrong_content_is_not_served(tmp_path: Path) -> None:
    data = b"the server's bytes\n" * 100
    md5 = hashlib.md5(data).hexdigest()
    key = DiskCache.key("/data/f", len(data), md5)
    writer_cache = DiskCache.create(tmp_path / "cache", 1 << 20)
    store(writer_cache, key, data, md5)
    fd = writer_cache.open(key, len(data), md5)
    assert fd is not None and os.pread(fd, len(data), 0) == data
    os.close(fd)
    entry = next(p for p in (tmp_path / "cache").rglob("*.data"))
    entry.write_bytes(b"X" * len(data))  # planted (or rotted) in place: same size, same name
    for cache in (writer_cache, DiskCache.create(tmp_path / "cache", 1 << 20)):  # this process, and the next
        assert cache.open(key, len(data), md5) is None
    assert not entry.exists()  # dropped, so the next read stores the server's bytes again


def test_a_symlinked_entry_is_not_served(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"12345")
    cache = DiskCache.create(tmp_path / "cache", 1 << 20)
    key = DiskCache.key("/data/f", 5)
    (tmp_path / "cache" / key[:2]).mkdir(mode=0o700)
    (tmp_path / "cache" / key[:2] / (key + ".data")).symlink_to(secret)
    assert cache.open(key, 5) is None
