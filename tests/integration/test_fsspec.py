"""The ``xnat`` fsspec filesystem against the emulator over loopback HTTP (issue 16).

Reading tests use the shared sample emulator (never changed); writing tests build their own archive
in a fresh emulator. Every filesystem is made with ``skip_instance_cache=True`` so that tests do not
share fsspec's cached instances (and their caches).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
import requests

from xnatfs.emulator.server import EmulatorServer
from xnatfs.fsspec import HiddenPassword, XNATFileSystem
from xnatfs.model.connect import Connection

pytestmark = pytest.mark.integration

DICOM = "projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_CT_1/scans/2/resources/DICOM"
BIG_SIZE = 700_000  # several of the reader's blocks (a first block of 128 KiB, then 1 MiB ones)


def make_fs(emulator: EmulatorServer, **options: object) -> XNATFileSystem:
    options.setdefault("user", "admin")
    options.setdefault("password", "admin")
    return fsspec.filesystem("xnat", url=emulator.url, skip_instance_cache=True, **options)


@pytest.fixture
def fs(emulator: EmulatorServer) -> Iterator[XNATFileSystem]:
    filesystem = make_fs(emulator)
    yield filesystem
    filesystem.close()


@pytest.fixture
def archive(fresh_emulator: EmulatorServer) -> EmulatorServer:
    """A fresh emulator with P/S1/S1_MR1 scan 1 (resource DICOM: a.dcm, big.bin, sub/c.dcm) and project
    resource NOTES (notes.txt)."""
    store = fresh_emulator.store
    with store.transaction():
        project = store.create_project("P")
        subject = store.create_subject(project.id, "S1")
        session = store.create_experiment(project.id, subject.id, "S1_MR1", "xnat:mrSessionData", {"modality": "MR"})
        scan = store.create_scan(session.id, "1", "xnat:mrScanData", {"type": "T1"})
        resource = store.create_resource(scan, "DICOM", format="DICOM")
        store.add_file(resource.id, "a.dcm", b"A" * 1000)
        store.add_file(resource.id, "big.bin", _big_bytes())
        store.add_file(resource.id, "sub/c.dcm", b"C" * 10)
        notes = store.create_resource(project, "NOTES")
        store.add_file(notes.id, "notes.txt", b"hello")
    return fresh_emulator


SCAN = "projects/P/subjects/S1/experiments/S1_MR1/scans/1"
RES = f"{SCAN}/resources/DICOM"


def _big_bytes() -> bytes:
    return bytes((i * 7 + i // 251) % 256 for i in range(BIG_SIZE))


@pytest.fixture
def wfs(archive: EmulatorServer) -> Iterator[XNATFileSystem]:
    filesystem = make_fs(archive)
    yield filesystem
    filesystem.close()


# -- the protocol and the connection -----------------------------------------------------------------

def test_the_protocol_is_registered_through_the_entry_point_and_connects_only_when_used() -> None:
    assert fsspec.get_filesystem_class("xnat") is XNATFileSystem
    # nothing listens on port 9: a constructor that sent a request would fail here
    fs = fsspec.filesystem("xnat", url="http://127.0.0.1:9", user="u", password="p", timeout=2,
                           skip_instance_cache=True)
    assert fs._core is None
    with pytest.raises(OSError):
        fs.ls("projects")


def test_paths_with_or_without_the_protocol_and_slashes_name_the_same_entries(fs: XNATFileSystem) -> None:
    plain = fs.ls(DICOM, detail=False)
    assert plain and all(name.startswith(DICOM + "/") for name in plain)
    assert fs.ls(f"xnat://{DICOM}", detail=False) == plain
    assert fs.ls(f"/{DICOM}/", detail=False) == plain
    assert fs.ls("", detail=False) == ["projects", "prearchive", "import"]


def test_ls_with_details_gives_the_servers_sizes_and_md5s(fs: XNATFileSystem, xnat: Connection) -> None:
    entries = {e["name"].rsplit("/", 1)[-1]: e for e in fs.ls(DICOM, detail=True)}
    scan = xnat.projects["DEMO"].subjects["DEMO_001"].experiments["DEMO_001_CT_1"].scans["2"]
    files = {f.name: f for f in scan.resources["DICOM"].files.values()}
    assert set(entries) == set(files)
    for name, entry in entries.items():
        assert entry["type"] == "file"
        assert entry["size"] == files[name].size
        assert entry["md5"] == files[name].digest and len(entry["md5"]) == 32
    with next(iter(files.values())).open() as handle:  # the library's own open file has a name too
        assert handle.name.endswith(f"/files/{next(iter(files))}")
    assert fs.info(DICOM)["type"] == "directory"
    with pytest.raises(FileNotFoundError):
        fs.info(f"{DICOM}/no-such-file.dcm")
    assert not fs.exists("projects/NOPE")


def test_info_of_a_document_has_its_size_and_ls_of_a_file_is_its_info(fs: XNATFileSystem) -> None:
    info = fs.info("projects/DEMO/xnat.json")
    data = fs.cat_file("projects/DEMO/xnat.json")
    assert info["size"] == len(data) > 0 and data.lstrip().startswith(b"{")
    first = fs.ls(DICOM)[0]
    assert fs.ls(first["name"]) == [fs.info(first["name"])]


def test_find_walk_and_glob_agree(fs: XNATFileSystem) -> None:
    found = fs.find("projects/DEMO")
    walked = [f"{root}/{name}" for root, _dirs, files in fs.walk("projects/DEMO") for name in files]
    assert sorted(walked) == found
    dicoms = fs.glob("projects/DEMO/subjects/*/experiments/*/scans/*/resources/DICOM/*.dcm")
    assert dicoms and set(dicoms) == {p for p in found if "/resources/DICOM/" in p and p.endswith(".dcm")}
    assert f"{DICOM}/2.CT.0001.dcm" in dicoms
    with_dirs = fs.find("projects/DEMO", withdirs=True, detail=True)
    assert with_dirs[DICOM]["type"] == "directory"
    sizes = fs.du("projects/DEMO/subjects/DEMO_001", total=False)  # documents too, sized
    assert all(isinstance(size, int) for size in sizes.values())
    assert sizes["projects/DEMO/subjects/DEMO_001/xnat.json"] == len(fs.cat_file("projects/DEMO/subjects/DEMO_001/xnat.json"))


def test_cat_file_reads_exactly_the_range_asked_for(wfs: XNATFileSystem) -> None:
    data = _big_bytes()
    path = f"{RES}/big.bin"
    assert wfs.cat_file(path) == data
    for start, end in [(0, 10), (131_000, 131_100), (500_000, None), (None, 5), (-100, None), (-300, -200),
                       (650_000, 10**9), (10, 10), (BIG_SIZE, None)]:
        assert wfs.cat_file(path, start=start, end=end) == data[start:end], (start, end)
    with pytest.raises(IsADirectoryError):
        wfs.cat_file(RES)


def test_cat_ranges_of_several_files(wfs: XNATFileSystem) -> None:
    big = _big_bytes()
    paths = [f"{RES}/big.bin", f"{RES}/a.dcm", f"{RES}/big.bin", f"{RES}/missing"]
    got = wfs.cat_ranges(paths, [100, 0, 600_000, 0], [200, 3, 600_050, 1])
    assert got[:3] == [big[100:200], b"AAA", big[600_000:600_050]]
    assert isinstance(got[3], FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        wfs.cat_ranges(paths, 0, 1, on_error="raise")


def test_open_is_seekable_and_reads_the_files_bytes(wfs: XNATFileSystem) -> None:
    data = _big_bytes()
    with wfs.open(f"xnat://{RES}/big.bin", "rb") as handle:
        assert handle.seekable()
        handle.seek(400_000)
        assert handle.read(1000) == data[400_000:401_000]
        handle.seek(-50, os.SEEK_END)
        assert handle.read() == data[-50:]
        handle.seek(3)
        assert handle.tell() == 3 and handle.read(5) == data[3:8]
        assert handle.name == f"/{RES}/big.bin"  # readers (pydicom, nibabel) ask for it
    with fsspec.open(f"xnat://{RES}/a.dcm", "rb", url=wfs.url, user="admin", password="admin") as handle:
        assert handle.read() == b"A" * 1000
    assert wfs._mount().stats().open_files == 0  # every handle was given back


def test_get_checks_the_md5_and_leaves_nothing_when_it_does_not_match(wfs: XNATFileSystem, archive: EmulatorServer,
                                                                       tmp_path: Path) -> None:
    wfs.get(f"{RES}/big.bin", str(tmp_path / "big.bin"))
    assert (tmp_path / "big.bin").read_bytes() == _big_bytes()
    wfs.get(RES, str(tmp_path / "all"), recursive=True)
    assert (tmp_path / "all" / "sub" / "c.dcm").read_bytes() == b"C" * 10
    assert (tmp_path / "all" / "a.dcm").read_bytes() == b"A" * 1000
    # the file changes on the server's disk behind its catalog: same size, other bytes, old md5
    resource = archive.store.find_resource(archive.store.get_scan(_session_id(archive), "1"), "DICOM")
    archive.store.disk_path(resource.id, "a.dcm").write_bytes(b"B" * 1000)
    with pytest.raises(OSError, match="md5"):
        wfs.get(f"{RES}/a.dcm", str(tmp_path / "a.dcm"))
    assert not (tmp_path / "a.dcm").exists()
    assert not list(tmp_path.glob("a.dcm*"))


def _session_id(server: EmulatorServer) -> str:
    return server.store.find_experiment("P", "S1_MR1").id


# -- writing --------------------------------------------------------------------------------------------

def test_pipe_and_put_upload_into_resources_and_replace_files(wfs: XNATFileSystem, tmp_path: Path) -> None:
    wfs.pipe(f"{RES}/new.txt", b"new file")
    assert wfs.cat_file(f"{RES}/new.txt") == b"new file"  # seen at once: our own write invalidated the listing
    assert wfs.info(f"{RES}/new.txt")["md5"] == hashlib.md5(b"new file").hexdigest()
    wfs.pipe(f"{RES}/a.dcm", b"replaced")
    assert wfs.cat_file(f"{RES}/a.dcm") == b"replaced"
    local = tmp_path / "up"
    (local / "deep").mkdir(parents=True)
    (local / "one.txt").write_bytes(b"one")
    (local / "deep" / "two.txt").write_bytes(b"two")
    wfs.put(str(local), f"{RES}/tree", recursive=True)
    assert wfs.cat_file(f"{RES}/tree/deep/two.txt") == b"two"
    assert wfs.cat_file(f"{RES}/tree/one.txt") == b"one"
    with wfs.open(f"{RES}/written.bin", "wb") as handle:
        handle.write(b"x" * 5000)
    assert wfs.info(f"{RES}/written.bin")["size"] == 5000
    with pytest.raises(FileExistsError):
        wfs.pipe(f"{RES}/written.bin", b"y", mode="create")
    with pytest.raises(ZeroDivisionError), wfs.open(f"{RES}/half.bin", "wb") as handle:
        handle.write(b"half")
        1 / 0
    assert not wfs.exists(f"{RES}/half.bin")  # a writer that failed uploads nothing


def test_writes_outside_resources_are_refused(wfs: XNATFileSystem) -> None:
    for path in (f"{SCAN}/x.txt", "projects/P/new.txt", "projects/P/subjects/S1/xnat.json", "import/x.zip"):
        with pytest.raises(PermissionError):
            wfs.pipe(path, b"data")
    with pytest.raises(PermissionError):
        wfs.mkdir("projects/P/subjects/NEW")
    assert not wfs.exists(f"{SCAN}/x.txt")


def test_mkdir_of_a_resource_makes_it_and_a_file_can_be_put_in_it(wfs: XNATFileSystem) -> None:
    wfs.mkdir(f"{SCAN}/resources/NIFTI")
    assert wfs.info(f"{SCAN}/resources/NIFTI")["type"] == "directory"
    wfs.pipe(f"{SCAN}/resources/NIFTI/t1.nii", b"nifti")
    assert wfs.cat_file(f"{SCAN}/resources/NIFTI/t1.nii") == b"nifti"


def test_rm_removes_files_in_resources_only(wfs: XNATFileSystem) -> None:
    wfs.rm(f"{RES}/a.dcm")
    assert not wfs.exists(f"{RES}/a.dcm")
    with pytest.raises(PermissionError):
        wfs.rm("projects/P/xnat.json")
    with pytest.raises(PermissionError):  # below a subject: documents too, so nothing is removed at all
        wfs.rm("projects/P/subjects/S1", recursive=True)
    assert wfs.cat_file(f"{RES}/sub/c.dcm") == b"C" * 10
    wfs.rm(RES, recursive=True)
    assert wfs.ls(RES) == []
    assert wfs.cat_file("projects/P/resources/NOTES/notes.txt") == b"hello"


# -- credentials ----------------------------------------------------------------------------------------

def test_the_password_is_in_no_repr_and_travels_only_when_given(emulator: EmulatorServer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "alice-secret"
    fs = make_fs(emulator, user="alice", password=secret)
    shown = " ".join([repr(fs), str(fs), repr(fs.storage_options), str(fs.storage_options), repr(fs.__dict__)])
    assert secret not in shown and isinstance(fs.storage_options["password"], HiddenPassword)
    assert secret.encode() in pickle.dumps(fs)  # the documented choice: an explicit password travels
    clone = pickle.loads(pickle.dumps(fs))
    assert clone.ls("projects", detail=False) == fs.ls("projects", detail=False)
    # a user name only: the password comes from XNATFS_PASSWORD where the filesystem is used
    monkeypatch.setenv("XNATFS_PASSWORD", secret)
    env_fs = make_fs(emulator, user="alice", password=None)
    payload = pickle.dumps(env_fs)
    assert secret.encode() not in payload
    assert pickle.loads(payload).ls("projects", detail=False) == fs.ls("projects", detail=False)
    wrong = make_fs(emulator, user="alice", password="not-her-password-7Q")
    with pytest.raises(PermissionError) as caught:
        wrong.ls("projects")
    assert "7Q" not in str(caught.value)


def test_a_forked_child_connects_again_and_reads(wfs: XNATFileSystem) -> None:
    assert wfs.cat_file(f"{RES}/a.dcm") == b"A" * 1000  # the parent's connection exists now
    parent_core = wfs._core
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: use the inherited filesystem
        try:
            ok = wfs.cat_file(f"{RES}/big.bin", start=10, end=20) == _big_bytes()[10:20] and wfs._core is not parent_core
            os.write(write_end, b"ok" if ok else b"bad")
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            os.write(write_end, repr(exc).encode()[:200])
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert wfs._core is parent_core and wfs.cat_file(f"{RES}/sub/c.dcm") == b"C" * 10


def _file_gets(server: EmulatorServer) -> int:
    counts = requests.get(f"{server.url}/emulator/requests", auth=("admin", "admin"), timeout=10).json()["by_route"]
    return sum(n for route, n in counts.items() if route.startswith("GET") and "/files/<path:path>" in route)


def test_filesystems_sharing_a_cache_folder_read_a_file_from_the_server_once(archive: EmulatorServer,
                                                                             tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    # other options (timeout), so each has its own connection and memory: only the folder is shared
    first, second = (make_fs(archive, cache_dir=str(cache), timeout=timeout) for timeout in (30, 29))
    assert first._here() is not second._here()
    try:
        assert first.cat_file(f"{RES}/big.bin") == _big_bytes()  # read whole: kept in the cache folder
        before = _file_gets(archive)
        assert before > 0
        assert second.cat_file(f"{RES}/big.bin") == _big_bytes()  # another filesystem (a worker) on the node
        with second.open(f"{RES}/big.bin") as handle:
            handle.seek(654_321)
            assert handle.read(10) == _big_bytes()[654_321:654_331]
        assert _file_gets(archive) == before
        assert oct(cache.stat().st_mode & 0o777) == "0o700"
    finally:
        first.close()
        second.close()


def test_listings_are_cached_for_the_metadata_ttl_like_the_mounts(archive: EmulatorServer) -> None:
    store = archive.store
    resource = store.find_resource(store.get_scan(_session_id(archive), "1"), "DICOM")
    cached, short = make_fs(archive), make_fs(archive, metadata_ttl=0.2)
    try:
        assert not cached.exists(f"{RES}/late.dcm") and not short.exists(f"{RES}/late.dcm")
        store.add_file(resource.id, "late.dcm", b"L" * 10)  # behind the clients' backs
        assert not cached.exists(f"{RES}/late.dcm")  # within the TTL: the cached listing answers
        cached.invalidate_cache()
        assert cached.cat_file(f"{RES}/late.dcm") == b"L" * 10
        time.sleep(0.3)  # past the short TTL: the listing is asked for again
        assert short.cat_file(f"{RES}/late.dcm") == b"L" * 10
    finally:
        cached.close()
        short.close()


def test_credentials_from_a_netrc_file(emulator: EmulatorServer, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1:{emulator.port} login alice password alice-secret\n")
    netrc.chmod(0o600)
    fs = make_fs(emulator, user=None, password=None, netrc_file=str(netrc))
    try:
        assert fs.ls("projects", detail=False)
        assert fs._here().connection.user == "alice"
    finally:
        fs.close()
    netrc.chmod(0o644)  # readable by others: refused, with the fix named
    loose = make_fs(emulator, user=None, password=None, netrc_file=str(netrc))
    with pytest.raises(PermissionError, match="chmod 600"):
        loose.ls("projects")


def test_the_threads_of_a_process_share_one_connection_per_set_of_options(emulator: EmulatorServer) -> None:
    def make() -> XNATFileSystem:  # fsspec keeps one instance per thread
        return fsspec.filesystem("xnat", url=emulator.url, user="admin", password="admin", metadata_ttl=59)

    made: dict[int, XNATFileSystem] = {}
    both_alive = threading.Barrier(2)

    def in_thread(i: int) -> None:
        made[i] = make()
        made[i]._here()
        both_alive.wait(timeout=10)  # two live threads: two idents, two fsspec instances

    threads = [threading.Thread(target=in_thread, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    first, second = made[0], made[1]
    try:
        assert first is not second and first._here() is second._here()
        assert first.ls("projects", detail=False) == second.ls("projects", detail=False)
        other = make_fs(emulator, user="alice", password="alice-secret", metadata_ttl=59)
        assert other._here() is not first._here()
        other.close()
        shared = first._here()
        second.close()  # closes the shared connection; the next call of either connects again
        assert first.ls("projects", detail=False) and first._here() is not shared
    finally:
        first.close()
