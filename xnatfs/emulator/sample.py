"""Deterministic sample data for the emulator: the demo archive, test fixtures and benchmarks.

Owns: `populate(store)`, which fills an empty `Store` with two projects of synthetic but real DICOM
data, and `summarize(store)`, the summary it returns. Same code → same archive: file bytes, labels
and accession IDs are identical on every run (only the Store's own insert dates differ).

What it creates (about 2 MB, well under a second):
- projects `DEMO` (3 subjects) and `STUDY2` (2 subjects), both `public` (every user and the guest
  may read them; only admin may change them);
- sessions `xnat:mrSessionData` (4), `xnat:ctSessionData` (1) and a PET/CT `xnat:petSessionData` (1),
  each with 2–3 scans (`xnat:mrScanData`, `xnat:ctScanData`, `xnat:petScanData`); every scan has a
  resource `DICOM` (format "DICOM", content "RAW") holding one series from `dicomgen`, files named
  `<scan ID>.<modality>.<instance:04d>.dcm` (e.g. `2.MR.0001.dcm`); series descriptions that map to
  BIDS names (T1w MPRAGE, T2w, FLAIR, two resting-state fMRI time series of 4 volumes, a diffusion
  series with b-values on the Philips session) and some that do not (a localizer, CT, PET), for the
  NIfTI and BIDS views;
- resources: project `DEMO` → `protocols` (`protocol.txt`, `docs/README.txt`), subject `DEMO_001` →
  `consent` (`consent.txt`), session `DEMO_001_MR_1` → `notes` (`notes.txt`);
- on `DEMO_001_MR_1`: assessor `DEMO_001_MR_1_QC` (`xnat:qcAssessmentData`, one ``scans/scan`` entry
  per scan of the session as xnat.xsd requires) with resource `QC` (`qc_report.txt`, `qc.json`; an
  assessor's "out" files), and reconstruction `DEMO_001_MR_1_T1_bc`
  with resource `RECON` (`recon.json`).

Field keys (XNAT data_fields names; nested single-valued elements flattened with "/"):
- project: name, secondary_id, description (Store columns) and fields {"keywords"};
- subject: gender, yob, handedness, group, and custom fields under "fields" ({"cohort"});
- session: filled from the DICOM headers exactly as the importer does (`dicomheaders`:
  `Study.session_fields()`): UID, date, time, modality, scanner, scanner/manufacturer,
  scanner/model, acquisition_site, dcmPatientName, dcmPatientId, dcmPatientBirthDate,
  dcmAccessionNumber, session_type, study_id, fieldStrength (MR); plus "note" on one session;
- scan: `Series.scan_fields()`: type, series_description, UID, modality, frames, quality
  ("usable"), startTime, scanner, scanner/manufacturer, scanner/model, parameters/imageType,
  parameters/voxelRes/{x,y,z}, parameters/orientation, fieldStrength, parameters/{tr,te,flip} (MR),
  parameters/kvp (CT);
- assessor: date, type, note, and "scans/scan" (a list of {"id": scan ID}: child items, not columns);
  reconstruction: type, baseScanType.
All values are strings. DICOM conventions: PatientName = subject label, PatientID = session label.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

from xnatfs.emulator.dicomgen import make_series, make_uid
from xnatfs.emulator.dicomheaders import Study, group_studies, read_instance
from xnatfs.emulator.store import Experiment, Store

INSTITUTION = "xnatfs Imaging Centre"


@dataclass(frozen=True)
class SeriesSpec:
    number: int
    description: str
    modality: str
    slices: int = 16
    #: more than one: an fMRI time series (each volume the same slices again)
    volumes: int = 1
    #: a diffusion series: b=0 then b=1000 along x, y, z (one volume each)
    diffusion: bool = False


@dataclass(frozen=True)
class SessionSpec:
    project: str
    subject: str
    label: str
    date: str  # DICOM form, YYYYMMDD
    time: str  # DICOM form, HHMMSS
    description: str
    manufacturer: str
    model: str
    station: str
    series: tuple[SeriesSpec, ...]


PROJECTS = (
    ("DEMO", "Demo project", "Demo", "Synthetic MR and CT sessions served by the xnatfs emulator.",
     {"keywords": "demo synthetic MR CT", "settings": {"accessibility": "public"}}),
    ("STUDY2", "Second study", "Study 2", "A second project: MR and PET/CT.",
     {"keywords": "pet", "settings": {"accessibility": "public"}}),
)
SUBJECTS = (
    ("DEMO", "DEMO_001", {"gender": "male", "yob": "1970", "handedness": "right", "group": "control",
                          "fields": {"cohort": "pilot"}}),
    ("DEMO", "DEMO_002", {"gender": "female", "yob": "1985", "handedness": "left", "group": "patient",
                          "fields": {"cohort": "main"}}),
    ("DEMO", "DEMO_003", {"gender": "female", "yob": "1992", "handedness": "right", "group": "control",
                          "fields": {"cohort": "main"}}),
    ("STUDY2", "S2_001", {"gender": "male", "yob": "1960", "handedness": "right", "group": "patient"}),
    ("STUDY2", "S2_002", {"gender": "female", "yob": "1978", "handedness": "right", "group": "control"}),
)
_GE, _SIEMENS, _PHILIPS = "GE MEDICAL SYSTEMS", "SIEMENS", "Philips"
SESSIONS = (
    SessionSpec("DEMO", "DEMO_001", "DEMO_001_MR_1", "20240115", "093000", "MR Brain", _GE,
                "SIGNA Premier", "MR01", (SeriesSpec(1, "Localizer", "MR", 3),
                                          SeriesSpec(2, "T1w MPRAGE", "MR"), SeriesSpec(3, "T2w FLAIR", "MR"))),
    SessionSpec("DEMO", "DEMO_001", "DEMO_001_CT_1", "20240116", "140500", "CT Head", _SIEMENS,
                "SOMATOM Definition AS", "CT01", (SeriesSpec(2, "Head 3mm", "CT"),
                                                  SeriesSpec(3, "Head bone", "CT"))),
    SessionSpec("DEMO", "DEMO_002", "DEMO_002_MR_1", "20240203", "101500", "MR Brain", _GE,
                "SIGNA Premier", "MR01", (SeriesSpec(1, "T1w MPRAGE", "MR"), SeriesSpec(2, "T2w TSE", "MR"))),
    SessionSpec("DEMO", "DEMO_003", "DEMO_003_MR_1", "20240310", "083000", "MR Brain", _GE,
                "SIGNA Premier", "MR01", (SeriesSpec(1, "T1w MPRAGE", "MR"),
                                          SeriesSpec(4, "fMRI rest", "MR", 16, 4))),
    SessionSpec("STUDY2", "S2_001", "S2_001_MR_1", "20231120", "153000", "MR Research", _PHILIPS,
                "Ingenia", "MR02", (SeriesSpec(1, "T1w 3D", "MR"), SeriesSpec(2, "rsfMRI", "MR", 16, 4),
                                    SeriesSpec(3, "T2w", "MR"),
                                    SeriesSpec(4, "DWI b1000", "MR", 16, 4, diffusion=True))),
    SessionSpec("STUDY2", "S2_002", "S2_002_PET_1", "20231201", "110000", "PET-CT FDG Brain", _GE,
                "Discovery MI", "PET01", (SeriesSpec(1, "CTAC 3.75mm", "CT"),
                                          SeriesSpec(2, "PET FDG Brain AC", "PT"))),
)


_DIFFUSION = ((0.0, (0.0, 0.0, 0.0)), (1000.0, (1.0, 0.0, 0.0)), (1000.0, (0.0, 1.0, 0.0)),
              (1000.0, (0.0, 0.0, 1.0)))


def populate(store: Store) -> dict:
    """Fill an empty store with the sample archive; a store that has projects is left alone.

    All-or-nothing (one Store transaction). Returns `summarize(store)` with "created" True/False.
    """
    if not store.is_empty():
        return {"created": False, **summarize(store)}
    demographics = {label: fields for _, label, fields in SUBJECTS}
    with store.transaction():
        for project_id, name, secondary_id, description, fields in PROJECTS:
            store.create_project(project_id, name=name, secondary_id=secondary_id,
                                 description=description, fields=fields)
        subjects = {label: store.create_subject(project, label, fields) for project, label, fields in SUBJECTS}
        sessions = {}
        for spec in SESSIONS:
            study, files = _study(spec, demographics[spec.subject])
            fields = study.session_fields()
            session = store.create_experiment(spec.project, subjects[spec.subject].id, spec.label,
                                              study.xsi_type, fields)
            for series in study.series:
                scan = store.create_scan(session.id, series.scan_id, series.xsi_type, series.scan_fields())
                resource = store.create_resource(scan, "DICOM", format="DICOM", content="RAW")
                for instance in series.instances:
                    name = f"{series.scan_id}.{series.modality}.{instance.instance_number:04d}.dcm"
                    store.add_file(resource.id, name, files[instance.entry], format="DICOM", content="RAW")
            sessions[spec.label] = session
        _add_other_resources(store, subjects["DEMO_001"], sessions["DEMO_001_MR_1"])
    return {"created": True, **summarize(store)}


def summarize(store: Store) -> dict:
    """Counts of what the store holds: projects (IDs), subjects, sessions, assessors, scans,
    reconstructions, resources, files and bytes."""
    def count(sql: str) -> int:
        return int(store.query(sql)[0][0])
    return {
        "projects": [p.id for p in store.list_projects()],
        "subjects": count("SELECT COUNT(*) FROM subjects"),
        "sessions": count("SELECT COUNT(*) FROM experiments WHERE session_id IS NULL"),
        "assessors": count("SELECT COUNT(*) FROM experiments WHERE session_id IS NOT NULL"),
        "scans": count("SELECT COUNT(*) FROM scans"),
        "reconstructions": count("SELECT COUNT(*) FROM reconstructions"),
        "resources": count("SELECT COUNT(*) FROM resources"),
        "files": count("SELECT COUNT(*) FROM files"),
        "bytes": count("SELECT COALESCE(SUM(size), 0) FROM files"),
    }


def _study(spec: SessionSpec, demographics: dict) -> tuple[Study, dict[str, bytes]]:
    """Generate the session's series and read them back as the importer would."""
    study_uid = make_uid("xnatfs-sample", spec.project, spec.label)
    frame_uid = make_uid(study_uid, "frame-of-reference")
    files: dict[str, bytes] = {}
    instances = []
    for series in spec.series:
        series_uid = make_uid(study_uid, "series", str(series.number))
        encoded = make_series(
            study_uid=study_uid, series_uid=series_uid, frame_of_reference_uid=frame_uid,
            patient_name=spec.subject, patient_id=spec.label, modality=series.modality,
            series_number=series.number, series_description=series.description,
            study_date=spec.date, study_time=spec.time, slices=series.slices,
            manufacturer=spec.manufacturer, model=spec.model,
            seed=zlib.crc32(f"{spec.label}/{series.number}".encode()),
            study_description=spec.description,
            accession_number=f"A{zlib.crc32(spec.label.encode()) % 10**8:08d}",
            station_name=spec.station, institution_name=INSTITUTION,
            patient_sex={"male": "M", "female": "F"}.get(demographics.get("gender", ""), "O"),
            patient_birth_date=f"{demographics['yob']}0101" if demographics.get("yob") else "",
            volumes=series.volumes, diffusion=_DIFFUSION if series.diffusion else ())
        for index, data in enumerate(encoded):
            entry = f"{series.number}/{index + 1}.dcm"
            files[entry] = data
            instance = read_instance(entry, data)
            if instance is None:  # dicomgen output must always parse; fail loudly if it does not
                raise RuntimeError(f"generated DICOM did not parse: {spec.label} {entry}")
            instances.append(instance)
    (study,) = group_studies(instances)
    return study, files


def _add_other_resources(store: Store, subject, session: Experiment) -> None:  # type: ignore[no-untyped-def]
    """Non-DICOM resources on every level, including a nested path, an assessor and a reconstruction."""
    project = store.get_project("DEMO")
    protocols = store.create_resource(project, "protocols", format="TXT", content="protocol",
                                      description="Study protocol documents")
    store.add_file(protocols.id, "protocol.txt",
                   b"DEMO protocol v1\n\n1. Localizer\n2. T1w MPRAGE (1 mm iso)\n3. T2w FLAIR\n")
    store.add_file(protocols.id, "docs/README.txt",
                   b"Synthetic sample data generated by xnatfs.emulator.sample.\n"
                   b"No real person is depicted.\n")
    consent = store.create_resource(subject, "consent", format="TXT", content="consent")
    store.add_file(consent.id, "consent.txt", b"Consent on file: yes\nSigned: 2024-01-10\n")
    store.update_experiment(session.id, {"note": "Sample session with a QC assessor and a reconstruction"})
    notes = store.create_resource(session, "notes", format="TXT", content="notes")
    store.add_file(notes.id, "notes.txt", b"Subject tolerated the scan well. No motion observed.\n")

    date = session.fields.get("date", "")
    scan_ids = [scan.id for scan in store.list_scans(session.id)]
    assessor = store.create_assessor(session.id, f"{session.label}_QC", "xnat:qcAssessmentData",
                                     {"date": date, "type": "manual", "note": "Visual QC: pass",
                                      "scans/scan": [{"id": scan_id} for scan_id in scan_ids]})
    qc = store.create_resource(assessor, "QC", format="TXT", content="QC_REPORT")
    store.add_file(qc.id, "qc_report.txt", b"Scan 1: pass\nScan 2: pass\nScan 3: pass\n")
    store.add_file(qc.id, "qc.json", json.dumps({"scans": {"1": "pass", "2": "pass", "3": "pass"},
                                                 "rater": "sample"}, sort_keys=True).encode() + b"\n")

    recon = store.create_reconstruction(session.id, f"{session.label}_T1_bc", fields={
        "type": "T1w_bias_corrected", "baseScanType": "T1w MPRAGE"})
    recon_files = store.create_resource(recon, "RECON", format="JSON", content="RECON")
    store.add_file(recon_files.id, "recon.json", json.dumps(
        {"input_scan": "2", "method": "N4", "output": "T1w_bias_corrected"}, sort_keys=True).encode() + b"\n")
