"""Uploaded DICOM archives: good ones are read and grouped; unsafe or damaged ones are refused, and
nothing is ever written outside the target directory."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from xnatfs.emulator.dicomgen import make_series, make_tar, make_uid, make_zip
from xnatfs.emulator.dicomheaders import DicomInstance, group_studies, read_instance
from xnatfs.emulator.dicomzip import (HEADER_CAP, ArchiveError, extract_entry, open_archive, read_archive,
                                      safe_entry_name)

pytestmark = pytest.mark.emulator

MR_SMALL = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
            "MR_small_implicit.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
            "MR_small_padded.dcm"]


def series_files(study: str = "S1", numbers: tuple[int, ...] = (2, 1), slices: int = 4) -> dict[str, bytes]:
    files = {}
    for number in numbers:
        encoded = make_series(
            study_uid=make_uid(study), series_uid=make_uid(study, str(number)),
            frame_of_reference_uid=make_uid(study, "for"), patient_name="SUBJ_A", patient_id=f"{study}_MR",
            modality="MR", series_number=number, series_description=f"Series {number}",
            study_date="20240115", study_time="093000", slices=slices, study_description="MR Brain")
        files.update({f"{study}/series{number}/IM{i + 1:04d}.dcm": data for i, data in enumerate(encoded)})
    return files


def refused(data: bytes, name_hint: str = "") -> str:
    with pytest.raises(ArchiveError) as caught:
        read_archive(io.BytesIO(data), name_hint=name_hint)
    assert caught.value.status == 400
    return str(caught.value)


def assert_nothing_written(tmp_path: Path, data: bytes, root: Path) -> None:
    """Trying to extract every entry of a refused archive writes nothing, inside or outside root."""
    root.mkdir(exist_ok=True)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ArchiveError), open_archive(io.BytesIO(data)) as archive:
        archive.extract({"x.dcm": "x.dcm", "../evil": "evil", "/abs": "abs"}, root)
    assert sorted(tmp_path.rglob("*")) == before


# ---- good archives ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_zip_tar_and_targz_give_the_same_instances(kind: str) -> None:
    files = series_files()
    data = {"zip": lambda: make_zip(files), "tar": lambda: make_tar(files, prefix="./"),
            "tar.gz": lambda: make_tar(files, gzipped=True)}[kind]()

    contents = read_archive(io.BytesIO(data), name_hint="upload.bin")

    assert contents.format == kind
    assert [i.entry for i in contents.instances] == list(files)
    assert contents.unparsable == []
    assert contents.total_bytes == sum(len(v) for v in files.values())


def test_format_comes_from_magic_bytes_not_the_name(tmp_path: Path) -> None:
    path = tmp_path / "upload.zip"
    path.write_bytes(make_tar(series_files(), gzipped=True))
    with open_archive(path, name_hint="upload.zip") as archive:
        assert archive.format == "tar.gz"


def test_instances_group_into_a_study_with_xnat_fields() -> None:
    contents = read_archive(io.BytesIO(make_zip(series_files())))
    (study,) = group_studies(contents.instances)

    assert study.study_uid == make_uid("S1") and study.xsi_type == "xnat:mrSessionData"
    assert [s.scan_id for s in study.series] == ["1", "2"]  # ordered by SeriesNumber
    assert [i.instance_number for i in study.series[0].instances] == [1, 2, 3, 4]
    session = study.session_fields()
    assert session["date"] == "2024-01-15" and session["time"] == "09:30:00"
    assert session["UID"] == make_uid("S1") and session["modality"] == "MR"
    assert (session["dcmPatientName"], session["dcmPatientId"]) == ("SUBJ_A", "S1_MR")
    assert session["session_type"] == "MR Brain"
    assert session["scanner/manufacturer"] == "GE MEDICAL SYSTEMS"
    scan = study.series[1].scan_fields()
    assert scan["type"] == scan["series_description"] == "Series 2"
    assert scan["UID"] == make_uid("S1", "2") and scan["frames"] == "4" and scan["quality"] == "usable"
    assert study.series[1].xsi_type == "xnat:mrScanData"


def test_pydicom_test_files_duplicates_keep_the_first_in_archive_order() -> None:
    files = {name: Path(get_testdata_file(name)).read_bytes() for name in [*MR_SMALL, "CT_small.dcm"]}
    studies = group_studies(read_archive(io.BytesIO(make_zip(files))).instances)

    mr, ct = studies
    assert (mr.xsi_type, ct.xsi_type) == ("xnat:mrSessionData", "xnat:ctSessionData")
    (series,) = mr.series
    assert [i.entry for i in series.instances] == ["MR_small.dcm"]
    assert [i.entry for i in series.duplicates] == MR_SMALL[1:]
    assert series.scan_id == "1" and series.scan_fields()["frames"] == "1"
    assert ct.session_fields()["date"] == "2004-01-19" and ct.session_fields()["time"] == "07:27:30"
    assert ct.session_fields()["dcmPatientName"] == "CompressedSamples^CT1"


def test_non_dicom_entries_are_listed_as_unparsable() -> None:
    files = {**series_files(numbers=(1,), slices=2), "__MACOSX/S1/._IM0001.dcm": b"\0\5\26\7junk",
             ".DS_Store": b"Bud1" + bytes(100), "README.txt": b"not dicom"}
    contents = read_archive(io.BytesIO(make_zip(files)))
    assert len(contents.instances) == 2
    assert contents.unparsable == ["__MACOSX/S1/._IM0001.dcm", ".DS_Store", "README.txt"]


def test_a_header_is_read_from_a_large_entry_without_its_pixels() -> None:
    (big,) = make_series(study_uid=make_uid("big"), series_uid=make_uid("big", "1"),
                         frame_of_reference_uid=make_uid("big", "f"), patient_name="P", patient_id="P",
                         modality="CT", series_number=1, series_description="big", study_date="20240101",
                         study_time="000000", rows=1024, columns=1024, slices=1)
    assert len(big) > HEADER_CAP
    (instance,) = read_archive(io.BytesIO(make_zip({"big.dcm": big}))).instances
    assert (instance.rows, instance.columns, instance.size) == (1024, 1024, len(big))


def test_scan_ids_fall_back_for_missing_and_repeated_series_numbers() -> None:
    def inst(series: str, number: str) -> DicomInstance:
        return DicomInstance(entry=f"{series}.dcm", size=1, study_uid="1.2", series_uid=series,
                             sop_uid=f"{series}.1", series_number=number)
    (study,) = group_studies([inst("1.2.9", "1"), inst("1.2.8", "1"), inst("1.2.7", ""), inst("1.2.6", "2")])
    assert [(s.series_uid, s.scan_id) for s in study.series] == [
        ("1.2.8", "1"), ("1.2.9", "1-2"), ("1.2.6", "2"), ("1.2.7", "3")]


def test_read_instance_refuses_non_dicom_and_uid_less_files() -> None:
    assert read_instance("a.txt", b"hello") is None
    assert read_instance("zeros", bytes(132)) is None
    dicomdir = Path(get_testdata_file("DICOMDIR")).read_bytes()  # DICOM, but no Study/Series UIDs
    assert dicomdir[128:132] == b"DICM"
    assert read_instance("DICOMDIR", dicomdir) is None
    (one,) = series_files(numbers=(1,), slices=1).values()
    assert read_instance("one.dcm", one).series_number == "1"


# ---- refusals -----------------------------------------------------------------------------------
def test_a_non_archive_is_refused() -> None:
    message = "The upload is not a zip or tar archive."
    assert refused(b"just some text, not an archive") == message
    assert refused(b"") == message
    assert refused(Path(get_testdata_file("MR_small.dcm")).read_bytes()) == message
    assert refused(gzip.compress(b"a gzipped file that is not a tar" * 10)) == message


def test_a_truncated_zip_is_refused(tmp_path: Path) -> None:
    data = make_zip(series_files())
    for cut in (len(data) - 10, len(data) // 2, 100):
        assert refused(data[:cut]).startswith("The zip archive is truncated or corrupt: ")
    assert_nothing_written(tmp_path, data[:len(data) // 2], tmp_path / "root")


def test_a_zip_with_a_damaged_entry_fails_its_crc_check() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in series_files(numbers=(1,), slices=2).items():
            archive.writestr(name, data)
    damaged = bytearray(buffer.getvalue())
    damaged[3000] ^= 0xFF  # inside the first entry's pixel data
    assert "Bad CRC-32" in refused(bytes(damaged))


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_a_truncated_tar_is_refused(mode: str) -> None:
    files = series_files(numbers=(1,), slices=3)
    data = make_tar(files, gzipped=mode == "w:gz")
    first_member_end = 512 + len(next(iter(files.values())))
    first_member_end += -first_member_end % 512
    cuts = [len(data) // 2, 700] + ([first_member_end, first_member_end + 100] if mode == "w" else [len(data) - 8])
    for cut in cuts:
        message = refused(data[:cut])
        assert message.startswith(f"The {'tar' if mode == 'w' else 'tar.gz'} archive is truncated or corrupt: ")


@pytest.mark.parametrize("name", ["../evil", "/abs", "a/../../evil", "a\\b.dcm", "C:/x.dcm"])
def test_a_zip_with_an_unsafe_entry_name_is_refused(tmp_path: Path, name: str) -> None:
    data = make_zip({**series_files(numbers=(1,), slices=1), name: b"payload"})
    assert refused(data) == f"Refused archive entry with an unsafe path: {name}"
    assert_nothing_written(tmp_path, data, tmp_path / "root")


def test_a_tar_with_an_unsafe_entry_name_is_refused(tmp_path: Path) -> None:
    data = make_tar({**series_files(numbers=(1,), slices=1), "../evil": b"payload"})
    assert refused(data) == "Refused archive entry with an unsafe path: ../evil"
    assert_nothing_written(tmp_path, data, tmp_path / "root")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
def test_a_tar_with_a_link_or_device_is_refused(tmp_path: Path, kind: bytes) -> None:
    files = series_files(numbers=(1,), slices=1)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = kind, "/etc/passwd"
        archive.addfile(link)
    assert refused(out.getvalue()) == "Refused archive entry that is a link or device: link"
    assert_nothing_written(tmp_path, out.getvalue(), tmp_path / "root")


def test_a_zip_with_a_symlink_entry_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    assert refused(buffer.getvalue()) == "Refused archive entry that is a link or device: link"


def test_a_zip_of_text_files_has_no_dicom() -> None:
    data = make_zip({"README.txt": b"hello", "notes/a.txt": b"world"})
    assert refused(data) == "The archive contains no DICOM files."


def test_an_entry_name_twice_is_refused() -> None:
    buffer = io.BytesIO()
    dicom = next(iter(series_files(numbers=(1,), slices=1).values()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is told to write
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("a.dcm", dicom)
            archive.writestr("a.dcm", dicom)
    assert refused(buffer.getvalue()) == "The archive contains the entry a.dcm more than once."


def test_entry_names_are_normalised() -> None:
    assert safe_entry_name("./a//b/./c.dcm") == "a/b/c.dcm"
    for bad in ("..", "a/..", "", "/", "\0x"):
        with pytest.raises(ArchiveError):
            safe_entry_name(bad)


# ---- extraction ---------------------------------------------------------------------------------
def test_extract_writes_chosen_entries_under_the_root(tmp_path: Path) -> None:
    files = series_files(numbers=(1,), slices=3)
    archive_path = tmp_path / "upload.tar.gz"
    archive_path.write_bytes(make_tar(files, gzipped=True, prefix="./"))
    root = tmp_path / "root"
    names = list(files)

    with open_archive(archive_path) as archive:
        written = archive.extract({names[0]: "scans/1/a.dcm", names[2]: "scans/1/c.dcm"}, root)

    assert written == {names[0]: root / "scans/1/a.dcm", names[2]: root / "scans/1/c.dcm"}
    assert (root / "scans/1/a.dcm").read_bytes() == files[names[0]]
    assert (root / "scans/1/c.dcm").read_bytes() == files[names[2]]
    assert sorted(p.name for p in (root / "scans/1").iterdir()) == ["a.dcm", "c.dcm"]
    path = extract_entry(archive_path, names[1], root, "b.dcm")
    assert path == root / "b.dcm" and path.read_bytes() == files[names[1]]


def test_extract_refuses_escapes_existing_files_and_unknown_entries(tmp_path: Path) -> None:
    files = series_files(numbers=(1,), slices=1)
    (name,) = files
    root = tmp_path / "root"
    (root / "inside").mkdir(parents=True)
    os.symlink(tmp_path, root / "link")  # a symlink inside the root that points out of it
    data = make_zip(files)
    with open_archive(io.BytesIO(data)) as archive:
        for target in ("../evil.dcm", "/tmp/evil.dcm", "link/evil.dcm"):
            with pytest.raises(ArchiveError, match="unsafe path"):
                archive.extract({name: target}, root)
        with pytest.raises(ArchiveError, match="No such entry"):
            archive.extract({"missing.dcm": "x.dcm"}, root)
        archive.extract({name: "inside/x.dcm"}, root)
        with pytest.raises(ArchiveError) as caught:
            archive.extract({name: "inside/x.dcm"}, root)
        assert caught.value.status == 409
        archive.extract({name: "inside/x.dcm"}, root, overwrite=True)
    assert not (tmp_path / "evil.dcm").exists()
    assert sorted(p.name for p in (root / "inside").iterdir()) == ["x.dcm"]
