"""The second real client, pyxnat, against the emulator over HTTP: connect, browse the sample
archive, read attributes, create objects, upload with pyxnat's ``POST …/resources/<numeric
id>/files/<name>?inbody=true&format=U…``, download, delete, project settings, and the version.

Version 1.6.3: its ``core`` is identical to 1.6.4 (the version the spec read), but 1.6.4 imports
every ``derivatives`` module at connect and one of them needs nibabel, which pyxnat does not declare.

pyxnat sends Basic credentials on every request and fetches every listing as CSV (spec §18.2), so
these tests exercise the CSV tables and the numeric-resource-ID routes that xnatpy never uses.

Not exercised, because the emulator does not implement them: ``repr()`` of subjects/experiments
and ``Interface.select('xnat:subjectData')`` searches (XNAT's search engine, ``POST /data/search``
with display fields), sharing (``…/projects/{P2}``) and project users (``/projects/{P}/users``).
Where pyxnat itself is broken on Python 3 the test sends what pyxnat means to send, and says so.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyxnat
import pyxnat.core.errors
import requests
from lxml import etree

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pyxnat reads ``~/.xnatPass`` and downloads to ``~/Downloads`` by default: keep HOME private."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("http_proxy", raising=False)
    return tmp_path


def connect(server: EmulatorServer) -> pyxnat.Interface:
    return pyxnat.Interface(server=server.url, user="admin", password="admin")


@pytest.fixture
def sample(emulator: EmulatorServer, home: Path) -> Iterator[pyxnat.Interface]:
    interface = connect(emulator)
    yield interface
    interface.disconnect()


def test_pyxnat_connects_on_data_and_reads_the_version(emulator: EmulatorServer, sample: pyxnat.Interface) -> None:
    assert sample._get_entry_point() == "/data"
    assert sample._jsession.startswith("JSESSIONID=") and len(sample._jsession) > len("JSESSIONID=")
    version = sample.version()  # /data/version is 404 on 1.7+, so pyxnat falls back to buildInfo
    build_info = requests.get(f"{emulator.url}/xapi/siteConfig/buildInfo", timeout=10).json()
    assert version == build_info and version["version"].startswith("1.8.")


def test_pyxnat_browses_the_sample_archive(emulator: EmulatorServer, sample: pyxnat.Interface) -> None:
    store = emulator.store
    assert set(sample.select.projects().get()) == {p.id for p in store.list_projects()}
    project = sample.select.project("DEMO")
    assert project.exists() and not sample.select.project("NOPE").exists()
    assert project.attrs.get("name") == "Demo project"

    subjects = list(project.subjects())
    assert sorted(s.id() for s in subjects) == sorted(s.id for s in store.list_subjects("DEMO"))
    assert sorted(s.label() for s in subjects) == ["DEMO_001", "DEMO_002", "DEMO_003"]
    subject = project.subject("DEMO_001")
    assert subject.exists() and subject.id() == store.find_subject("DEMO", "DEMO_001").id
    assert not project.subject("DEMO_999").exists()
    assert subject.attrs.get("gender") == "male"
    assert subject.attrs.get("xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/yob") == "1970"

    stored = store.find_experiment("DEMO", "DEMO_001_MR_1")
    assert sorted(e.label() for e in subject.experiments()) == ["DEMO_001_CT_1", "DEMO_001_MR_1"]
    experiment = subject.experiment("DEMO_001_MR_1")
    assert experiment.exists() and experiment.id() == stored.id
    assert experiment.datatype() == "xnat:mrSessionData"
    assert experiment.attrs.get("xnat:mrSessionData/date") == "2024-01-15"
    assert experiment.attrs.mget(["label", "xnat:mrSessionData/UID"]) == ["DEMO_001_MR_1", stored.fields["UID"]]
    assert sample.select.experiment(stored.id).exists()

    assert experiment.scans().get() == [s.id for s in store.list_scans(stored.id)]
    scan = experiment.scan("2")
    assert scan.exists() and scan.datatype() == "xnat:mrScanData"
    assert scan.attrs.get("type") == "T1w MPRAGE"
    assert scan.attrs.get("xnat:mrScanData/frames") == "16"
    assert not experiment.scan("99").exists()

    assert [r.label() for r in scan.resources()] == ["DICOM"]
    resource = scan.resource("DICOM")
    stored_resource = store.find_resource(store.get_scan(stored.id, "2"), "DICOM")
    assert resource.exists() and resource.id() == str(stored_resource.id)
    attributes = resource.attributes()
    count, size = store.file_stats(stored_resource.id)
    assert (attributes["label"], attributes["file_count"], attributes["file_size"]) == ("DICOM", str(count), str(size))
    assert (attributes["format"], attributes["content"]) == ("DICOM", "RAW")

    stored_files = store.list_files(stored_resource.id)
    assert resource.files().get() == [f.path for f in stored_files]
    assert [r.label() for r in experiment.resources()] == ["notes"]
    assert experiment.assessors().get() == [a.id for a in store.list_experiments(session_id=stored.id)]
    assert experiment.reconstructions().get() == ["DEMO_001_MR_1_T1_bc"]

    by_path = sample.select("/project/DEMO/subjects").get()
    assert sorted(by_path) == sorted(s.id for s in store.list_subjects("DEMO"))
    nested = sample.select("/projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR_1/scans/*/resources/DICOM")
    assert sorted(r.id() for r in nested) == sorted(
        str(store.find_resource(s, "DICOM").id) for s in store.list_scans(stored.id))


def test_pyxnat_downloads_files_and_reads_file_attributes(emulator: EmulatorServer, sample: pyxnat.Interface,
                                                          home: Path) -> None:
    store = emulator.store
    stored = store.find_experiment("DEMO", "DEMO_001_MR_1")
    stored_resource = store.find_resource(store.get_scan(stored.id, "2"), "DICOM")
    wanted = store.list_files(stored_resource.id)[1]
    remote = sample.select.project("DEMO").subject("DEMO_001").experiment("DEMO_001_MR_1") \
        .scan("2").resource("DICOM").file(wanted.path)
    assert remote.exists()
    assert remote.size() == str(wanted.size) and remote.format() == "DICOM" and remote.content() == "RAW"
    assert remote.attributes()["digest"] == wanted.md5
    target = remote.get(str(home / "slice.dcm"))
    assert hashlib.md5(Path(target).read_bytes()).hexdigest() == wanted.md5
    assert remote.last_modified()  # HEAD on the file URI carries Last-Modified

    protocols = sample.select.project("DEMO").resource("protocols")
    assert sorted(protocols.files().get()) == ["README.txt", "protocol.txt"]  # pyxnat lists by Name
    nested = protocols.file("docs/README.txt")
    assert nested.exists()
    assert Path(nested.get(str(home / "readme.txt"))).read_bytes().startswith(b"Synthetic sample data")
    extracted = protocols.get(str(home), extract=True)  # a resource zip, re-rooted by pyxnat
    assert sorted(Path(p).relative_to(home / "protocols").as_posix() for p in extracted) == [
        "docs/README.txt", "protocol.txt"]


def test_pyxnat_experiment_array(emulator: EmulatorServer, sample: pyxnat.Interface) -> None:
    store = emulator.store
    rows = sample.array.experiments(project_id="DEMO", experiment_type="xnat:mrSessionData")
    assert sorted(r["ID"] for r in rows) == sorted(
        e.id for e in store.list_experiments("DEMO") if e.xsi_type == "xnat:mrSessionData")
    subject_id = store.find_subject("DEMO", "DEMO_001").id
    assert subject_id in {r["subject_ID"] for r in rows}  # the shortcut names the column (spec §8.1)
    # xnat:subjectData/label is the subject's label (XNAT joins the subject table), not the experiment's
    assert sorted(r["ID"] for r in sample.array.experiments(subject_label="DEMO_001")) == sorted(
        e.id for e in store.list_experiments("DEMO", subject_id))
    scans = sample.array.scans(project_id="DEMO", experiment_type="xnat:mrSessionData", scan_type="xnat:mrScanData")
    expected = sorted((e.id, s.id) for e in store.list_experiments("DEMO") if e.xsi_type == "xnat:mrSessionData"
                      for s in store.list_scans(e.id))
    assert sorted((r["ID"], r["xnat:mrscandata/id"]) for r in scans) == expected
    ct_only = sample.array.scans(project_id="DEMO", scan_type="xnat:ctScanData",
                                 columns=["xnat:ctScanData/type"])
    assert sorted(r["xnat:ctscandata/type"] for r in ct_only) == ["Head 3mm", "Head bone"]


def test_pyxnat_creates_uploads_downloads_and_deletes(fresh_emulator: EmulatorServer, home: Path) -> None:
    store = fresh_emulator.store
    interface = connect(fresh_emulator)
    project = interface.select.project("P1")
    project.create()
    assert store.get_project("P1") is not None
    assert project.accessibility() == b"protected"  # XNAT's default without ?accessibility=
    assert project.set_accessibility("private") == b"private" and project.accessibility() == b"private"
    assert (project.prearchive_code(), project.quarantine_code()) == (0, 0)
    project.set_prearchive_code("4")  # pyxnat joins the code into the URI: an int fails in pyxnat itself
    project.set_quarantine_code("1")
    assert (project.prearchive_code(), project.quarantine_code()) == (4, 1)
    # set_subfolder_in_current_arc joins current_arc()'s bytes into a str URI (a pyxnat bug on
    # Python 3); send what it means to send
    interface._exec(f"{project._uri}/current_arc/{project.current_arc().decode()}/sub", "PUT")
    assert project.current_arc() == b"arc001/sub"

    subject = project.subject("SUBJ1")
    # pyxnat puts create parameters into the URL unencoded, so an XML path with a [@xsi:type=…]
    # predicate would be cut at its "=" by any server (XNAT too); the shortcut name avoids that.
    subject.create(gender="female")
    stored_subject = store.find_subject("P1", "SUBJ1")
    assert subject.exists() and subject.id() == stored_subject.id
    assert subject.attrs.get("gender") == "female"

    experiment = subject.experiment("SUBJ1_MR")
    experiment.create(**{"xnat:mrSessionData/date": "2021-03-04"})  # pyxnat's default experiment type
    stored_experiment = store.find_experiment("P1", "SUBJ1_MR")
    assert stored_experiment.xsi_type == "xnat:mrSessionData" and stored_experiment.fields["date"] == "2021-03-04"
    experiment.attrs.mset({"xnat:mrSessionData/note": "made by pyxnat", "xnat:mrSessionData/fieldStrength": "3.0"})
    assert experiment.attrs.mget(["note", "fieldStrength"]) == ["made by pyxnat", "3.0"]
    ct = subject.experiment("SUBJ1_CT")
    ct.create(experiments="xnat:ctSessionData")
    assert ct.datatype() == "xnat:ctSessionData" and store.find_experiment("P1", "SUBJ1_CT").xsi_type == \
        "xnat:ctSessionData"

    # A scan under a session that does not exist yet: pyxnat creates the missing parents first.
    scan = project.subject("SUBJ2").experiment("SUBJ2_MR").scan("7")
    scan.create(scans="xnat:mrScanData", **{"xnat:mrScanData/type": "T1"})
    session2 = store.find_experiment("P1", "SUBJ2_MR")
    assert session2 is not None and store.get_scan(session2.id, "7").fields["type"] == "T1"
    assert scan.exists() and scan.attrs.get("type") == "T1"

    resource = scan.resource("NIFTI")
    resource.create()
    stored_resource = store.find_resource(store.get_scan(session2.id, "7"), "NIFTI")
    assert resource.exists() and resource.id() == str(stored_resource.id)

    # File.put POSTs to …/resources/<numeric id>/files/<name>?format=U&content=U&tags=U&overwrite=false&inbody=true
    payload = bytes(range(256)) * 40
    local = home / "volume.nii"
    local.write_bytes(payload)
    resource.file("volume.nii").put(str(local))
    resource.file("sub/dir/note.txt").put("a note\n", format="TXT", content="NOTE")
    (volume,) = (f for f in store.list_files(stored_resource.id) if f.path == "volume.nii")
    assert volume.md5 == hashlib.md5(payload).hexdigest()
    assert sorted(resource.files().get()) == ["note.txt", "volume.nii"]
    note = resource.file("sub/dir/note.txt")
    assert (note.format(), note.content()) == ("TXT", "NOTE")
    assert resource.file("volume.nii").format() == "U"  # pyxnat's "unknown" file format is stored as sent
    downloaded = resource.file("volume.nii").get(str(home / "downloaded.nii"))
    assert Path(downloaded).read_bytes() == payload

    # put_zip: pyxnat names the zip in the URL and adds extract=true; the entries land in the resource.
    archive = home / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("bundle/a.txt", "A")
        bundle.writestr("bundle/b/c.txt", "C")
    resource.put_zip(str(archive))
    paths = sorted(f.path for f in store.list_files(stored_resource.id))
    assert paths == ["bundle/a.txt", "bundle/b/c.txt", "sub/dir/note.txt", "volume.nii"]

    resource.file("volume.nii").delete()
    assert not resource.file("volume.nii").exists()
    assert store.get_file(stored_resource.id, "volume.nii") is None

    subject.delete()
    assert not subject.exists() and store.find_subject("P1", "SUBJ1") is None
    assert store.find_experiment("P1", "SUBJ1_MR") is None
    experiment2 = project.subject("SUBJ2").experiment("SUBJ2_MR")
    experiment2.delete()
    assert not experiment2.exists() and store.find_experiment("P1", "SUBJ2_MR") is None
    interface.disconnect()


def test_pyxnat_creates_from_an_xml_document(emulator: EmulatorServer, fresh_emulator: EmulatorServer,
                                             home: Path) -> None:
    """``create(xml=path)``: a multipart PUT of ``data.xml`` with ``allowDataDeletion=true``; the
    document is a sample session's XML as the emulator serves it, relabelled by pyxnat."""
    source = emulator.store.find_experiment("DEMO", "DEMO_002_MR_1")
    xml = requests.get(f"{emulator.url}/data/experiments/{source.id}", params={"format": "xml"},
                       auth=("admin", "admin"), timeout=10).content
    document = etree.fromstring(xml)
    document.attrib.pop("ID")  # a new session gets its own accession ID
    document.set("project", "P1")
    for element in document.iter("{http://nrg.wustl.edu/xnat}subject_ID"):
        element.getparent().remove(element)
    local = home / "session.xml"
    # No XML declaration: pyxnat reads the file as text and lxml refuses text with an encoding
    # declaration, after which pyxnat fails on str.decode (a pyxnat bug, not a server matter).
    local.write_bytes(etree.tostring(document))

    interface = connect(fresh_emulator)
    interface.select.project("P1").create()
    interface.select.project("P1").subject("S1").create()
    created = interface.select.project("P1").subject("S1").experiment("FROM_XML")
    created.create(xml=str(local))
    stored = fresh_emulator.store.find_experiment("P1", "FROM_XML")
    assert stored is not None and stored.xsi_type == "xnat:mrSessionData"
    assert stored.fields["date"] == source.fields["date"] and stored.fields["UID"] == source.fields["UID"]
    assert sorted(s.id for s in fresh_emulator.store.list_scans(stored.id)) == sorted(
        s.id for s in emulator.store.list_scans(source.id))
    assert created.attrs.get("xnat:mrSessionData/date") == source.fields["date"]
    interface.disconnect()


def test_pyxnat_errors_surface_the_status_page_message(fresh_emulator: EmulatorServer, home: Path) -> None:
    """pyxnat reads the message from the ``<h3>`` of XNAT's status page (spec §4)."""
    interface = connect(fresh_emulator)
    with pytest.raises(pyxnat.core.errors.DatabaseError) as raised:
        interface._exec("/data/projects/NOPE/subjects/X?format=xml")
    assert "status code: 404" in str(raised.value)
    interface.disconnect()
    wrong = pyxnat.Interface(server=fresh_emulator.url, user="admin", password="wrong")
    assert wrong._get_entry_point() == "/REST"  # pyxnat swallows the 401 of /data/JSESSION
    refused = wrong.get("/data/projects?format=csv")
    # XNAT 1.8 refuses at its Spring layer, with Tomcat's page: pyxnat does not take that for an XNAT
    # status page (it looks for Restlet's), so it reaches the caller as the plain 401 it is
    assert refused.status_code == 401 and b"HTTP Status 401" in refused.content
    assert not pyxnat.core.errors.is_xnat_error(refused.content)
