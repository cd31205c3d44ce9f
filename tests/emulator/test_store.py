"""The emulator's store on its own (no HTTP): scans and reconstructions through their shared helpers,
label uniqueness, cascading deletes, all-or-nothing transactions and the byte helpers."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from xnatfs.emulator.store import (Conflict, Experiment, Invalid, NotFound, Reconstruction, Scan, Store,
                                   check_relative_path, copy_stream, md5_of, natural_key)

pytestmark = pytest.mark.emulator


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "data")
    yield opened
    opened.close()


@pytest.fixture
def session(store: Store) -> Experiment:
    store.create_project("P")
    subject = store.create_subject("P", "S")
    return store.create_experiment("P", subject.id, "E")


def test_scans_list_in_natural_order_reconstructions_in_creation_order(store: Store, session: Experiment) -> None:
    for scan_id in ("10", "2", "b", "1"):
        store.create_scan(session.id, scan_id)
        store.create_reconstruction(session.id, scan_id)
    assert [s.id for s in store.list_scans(session.id)] == ["1", "2", "10", "b"]
    assert [r.id for r in store.list_reconstructions(session.id)] == ["10", "2", "b", "1"]
    assert all(type(s) is Scan for s in store.list_scans(session.id))
    assert all(type(r) is Reconstruction for r in store.list_reconstructions(session.id))
    assert sorted(["10", "x", "9", "100", "a"], key=natural_key) == ["9", "10", "100", "a", "x"]


@pytest.mark.parametrize("kind", ["scan", "reconstruction"])
def test_child_create_update_delete(store: Store, session: Experiment, kind: str) -> None:
    create, get, update, delete = (getattr(store, f"{verb}_{kind}") for verb in ("create", "get", "update", "delete"))
    created = create(session.id, "7", fields={"type": "T1", "note": "n"})
    assert (created.kind, created.experiment_id, created.fields) == (kind, session.id, {"type": "T1", "note": "n"})
    with pytest.raises(Conflict, match=f"Specified {kind} already exists."):
        create(session.id, "7")
    with pytest.raises(NotFound, match="Specified image session doesn't exist."):
        create("XNAT_E99999", "7")

    updated = update(session.id, "7", {"note": "NULL", "quality": "usable"})
    assert updated.fields == {"type": "T1", "quality": "usable"} and updated.xsi_type == created.xsi_type
    with pytest.raises(NotFound, match=f"Unable to find the specified {kind}.") as missing:
        update(session.id, "8", {"note": "x"})
    assert missing.value.status == 404

    resource = store.create_resource(updated, "R")
    kept = store.add_file(resource.id, "a/b.txt", b"bytes")
    delete(session.id, "7")
    assert get(session.id, "7") is None and store.get_resource(resource.id) is None
    assert not kept.disk_path.exists()
    with pytest.raises(NotFound, match=f"Unable to find the specified {kind}."):
        delete(session.id, "7")


def test_update_scan_may_change_its_type(store: Store, session: Experiment) -> None:
    store.create_scan(session.id, "1", "xnat:mrScanData")
    assert store.update_scan(session.id, "1", {}, "xnat:ctScanData").xsi_type == "xnat:ctScanData"
    assert store.update_scan(session.id, "1", {"type": "x"}).xsi_type == "xnat:ctScanData"


def test_labels_are_unique_within_a_project(store: Store, session: Experiment) -> None:
    other_subject = store.create_subject("P", "S2")
    with pytest.raises(Conflict, match="Specified label is already in use."):
        store.create_subject("P", "S")
    with pytest.raises(Conflict):
        store.update_subject(other_subject.id, label="S")
    with pytest.raises(Conflict):
        store.create_experiment("P", other_subject.id, "E")
    second = store.create_experiment("P", other_subject.id, "E2")
    with pytest.raises(Conflict):
        store.update_experiment(second.id, label="E")
    assert store.update_experiment(second.id, label="E2").label == "E2"  # its own label: no change, no conflict
    assert store.update_subject(other_subject.id, label="S3").label == "S3"
    store.create_project("Q")
    assert store.create_subject("Q", "S").project == "Q"  # another project may use the label


def test_failed_transaction_leaves_no_rows_and_no_new_files(store: Store, session: Experiment) -> None:
    resource = store.create_resource(session, "R")
    with pytest.raises(RuntimeError), store.transaction():
        written = store.add_file(resource.id, "new.txt", b"new")
        store.create_scan(session.id, "1")
        raise RuntimeError("abort")
    assert store.get_file(resource.id, "new.txt") is None and not written.disk_path.exists()
    assert store.list_scans(session.id) == []


def test_add_file_from_bytes_stream_and_moved_path_agree(store: Store, session: Experiment, tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # more than one CHUNK
    resource = store.create_resource(session, "R")
    spooled = tmp_path / "spooled"
    spooled.write_bytes(data)
    rows = [store.add_file(resource.id, "bytes.bin", data),
            store.add_file(resource.id, "stream.bin", io.BytesIO(data)),
            store.add_file(resource.id, "path.bin", spooled),
            store.add_file(resource.id, "moved.bin", spooled, move=True)]
    expected = hashlib.md5(data).hexdigest()
    assert [(r.size, r.md5) for r in rows] == [(len(data), expected)] * 4
    assert all(r.disk_path.read_bytes() == data for r in rows) and not spooled.exists()
    assert md5_of(rows[0].disk_path) == expected
    out = io.BytesIO()
    assert copy_stream(io.BytesIO(data), out) == (len(data), expected) and out.getvalue() == data


@pytest.mark.parametrize("path", ["", "/abs", "a/../b", "..", "a//b", "a\\b", "./a", "a\0b"])
def test_unsafe_relative_paths_are_refused(path: str) -> None:
    with pytest.raises(Invalid):
        check_relative_path(path)


def test_relative_path_is_normalised() -> None:
    assert check_relative_path("a/b/") == "a/b"


def test_resource_counters_follow_every_write(store: Store, session: Experiment) -> None:
    """file_count/file_size are kept by triggers (a listing reads them instead of counting thousands of
    files); they must agree with the files after adds, overwrites, folder deletes and rollbacks."""
    first, second = store.create_resource(session, "A"), store.create_resource(session, "B")

    def counted(resource_id: int) -> tuple[int, int]:
        row = store.query("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files WHERE resource_id=?", (resource_id,))[0]
        return int(row[0]), int(row[1])

    store.add_file(first.id, "a.txt", b"12345")
    store.add_file(first.id, "dir/b.txt", b"12")
    store.add_file(first.id, "dir/c.txt", b"1")
    store.add_file(first.id, "a.txt", b"123", overwrite=True)
    store.add_file(second.id, "x.txt", b"xx")
    with pytest.raises(RuntimeError), store.transaction():
        store.add_file(second.id, "y.txt", b"yyyy")
        raise RuntimeError("abort")
    assert store.file_stats(first.id) == counted(first.id) == (3, 6)
    assert store.file_stats_many([first.id, second.id]) == {first.id: (3, 6), second.id: (1, 2)}
    assert store.delete_file(first.id, "dir") == 2
    assert store.file_stats(first.id) == counted(first.id) == (1, 3)
    store.delete_resource(second.id)
    assert store.file_stats(second.id) == (0, 0)


def test_an_archive_without_counters_gets_them_counted(tmp_path: Path) -> None:
    """An archive written before the counters existed opens with them filled in, then kept."""
    store = Store(tmp_path / "data")
    store.create_project("P")
    resource = store.create_resource(store.get_project("P"), "R")  # type: ignore[arg-type]
    store.add_file(resource.id, "a.txt", b"abc")
    with store.transaction() as db:  # as an older emulator left it: no counter columns, no triggers
        for trigger in ("files_added", "files_removed", "files_changed"):
            db.execute(f"DROP TRIGGER {trigger}")
        db.execute("ALTER TABLE resources DROP COLUMN file_count")
        db.execute("ALTER TABLE resources DROP COLUMN file_size")
    store.close()
    reopened = Store(tmp_path / "data")
    try:
        assert reopened.file_stats(resource.id) == (1, 3)
        reopened.add_file(resource.id, "b.txt", b"de")
        assert reopened.file_stats(resource.id) == (2, 5)
    finally:
        reopened.close()


def test_folder_prefixes_are_exact_and_case_sensitive(store: Store, session: Experiment) -> None:
    """A folder's files are found by a range on the (resource, path) index: exactly the paths under
    it, case-sensitively (LIKE, used before, ignored case and needed _ and % escaped)."""
    resource = store.create_resource(session, "R")
    paths = ["dir/a", "DIR/b", "dir0", "dir/sub/c", "di/x", "a_b/1", "a%b/2", "axb/3", "z\U0010ffff/q", "z/r"]
    for path in paths:
        store.add_file(resource.id, path, b".")

    def under(prefix: str) -> list[str]:
        return [f.path for f in store.list_files(resource.id, prefix)]

    assert under("dir/") == ["dir/a", "dir/sub/c"]
    assert under("DIR/") == ["DIR/b"]
    assert (under("a_b/"), under("a%b/")) == (["a_b/1"], ["a%b/2"])
    assert under("z\U0010ffff") == ["z\U0010ffff/q"]  # no code point above it: no upper bound
    assert sorted(f.path for f in store.list_files(resource.id)) == sorted(paths)
    with pytest.raises(Conflict, match="A folder exists at dir"):
        store.add_file(resource.id, "dir", b".")
    store.add_file(resource.id, "Dir", b".")  # another name: no folder there
    assert store.delete_file(resource.id, "dir") == 2 and under("dir/") == [] and under("DIR/") == ["DIR/b"]
