"""DICOM headers as the XNAT importer sees them: one file → `DicomInstance`, files → studies and series.

Owns: reading a DICOM header with pydicom (`read_instance`, `force=False`, never the pixels),
grouping instances into `Study` → `Series` (`group_studies`), and the DICOM → XNAT field mapping
that XNAT's session builder applies (`Study.session_fields`, `Series.scan_fields`, the xsi types).
Used by `dicomzip` (uploaded archives) and `sample` (the demo archive), so both fill sessions alike.

Field formats follow XNAT: dates `YYYY-MM-DD`, times `HH:MM:SS`, every field value a string, empty
values left out. Keys are XNAT data_fields names, nested single-valued elements flattened with "/".
Session: UID, date, time, modality, scanner, scanner/manufacturer, scanner/model, acquisition_site,
dcmPatientName, dcmPatientId, dcmPatientBirthDate, dcmAccessionNumber, session_type, study_id,
fieldStrength (MR). Scan: type, series_description, UID, modality, frames, quality, startTime,
scanner, scanner/manufacturer, scanner/model, parameters/imageType, parameters/voxelRes/{x,y,z},
parameters/orientation (MR, CT), fieldStrength and parameters/{tr,te,flip} (MR), parameters/kvp (CT).

Scan IDs: SeriesNumber; a number used by two series gets "-2", "-3"… on the later ones (ordered by
series UID); a series without a number gets the lowest unused positive integer.
Duplicates: an instance whose SOPInstanceUID was already seen in the same study is kept once — the
first in input (archive) order wins; later copies are listed in `Series.duplicates`.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

import pydicom
from pydicom.errors import InvalidDicomError

# pydicom raises many kinds of exception on hostile bytes; these are the ones a bad header produces.
_PARSE_ERRORS = (InvalidDicomError, EOFError, ValueError, TypeError, KeyError, IndexError,
                 AttributeError, OverflowError, NotImplementedError, struct.error, OSError)
# XNAT's session/scan types per DICOM modality (xnat.xsd); anything else is "otherDicom".
_XSI_PREFIX = {"MR": "mr", "CT": "ct", "PT": "pet", "CR": "cr", "DX": "dx", "MG": "mg", "US": "us",
               "XA": "xa", "RF": "rf", "NM": "nm", "IO": "io", "OP": "op", "SM": "sm", "ECG": "ecg"}
_SESSION_MODALITY_ORDER = ("PT", "MR", "CT")  # a PET/CT study is a PET session, as in XNAT


@dataclass(frozen=True)
class DicomInstance:
    """One DICOM file's header, as the importer needs it. Absent values are "" (or None)."""
    entry: str
    size: int
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str = ""
    transfer_syntax_uid: str = ""
    modality: str = ""
    series_number: str = ""
    instance_number: int | None = None
    series_description: str = ""
    study_description: str = ""
    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_date: str = ""
    study_time: str = ""
    series_time: str = ""
    accession_number: str = ""
    study_id: str = ""
    manufacturer: str = ""
    model: str = ""
    station_name: str = ""
    institution_name: str = ""
    rows: int | None = None
    columns: int | None = None
    frames: int = 1
    pixel_spacing: tuple[float, float] | None = None
    slice_thickness: float | None = None
    orientation: str = ""  # "Tra", "Sag" or "Cor" from ImageOrientationPatient
    image_type: str = ""
    field_strength: str = ""
    repetition_time: str = ""
    echo_time: str = ""
    flip_angle: str = ""
    kvp: str = ""


@dataclass
class Series:
    """One scan: instances sorted by InstanceNumber then entry name."""
    scan_id: str
    series_uid: str
    instances: list[DicomInstance]
    duplicates: list[DicomInstance] = field(default_factory=list)

    @property
    def first(self) -> DicomInstance:
        return self.instances[0]

    @property
    def type(self) -> str:
        return self.first.series_description

    @property
    def modality(self) -> str:
        return self.first.modality

    @property
    def xsi_type(self) -> str:
        prefix = _XSI_PREFIX.get(self.modality)
        return f"xnat:{prefix}ScanData" if prefix else "xnat:otherDicomScanData"

    @property
    def frames(self) -> int:
        return sum(i.frames for i in self.instances)

    def scan_fields(self) -> dict[str, str]:
        """The scan's data_fields as XNAT's DICOM session builder fills them."""
        h = self.first
        fields = {"type": h.series_description, "series_description": h.series_description,
                  "UID": self.series_uid, "modality": h.modality, "frames": str(self.frames),
                  "quality": "usable", "startTime": h.series_time, "scanner": h.station_name,
                  "scanner/manufacturer": h.manufacturer, "scanner/model": h.model,
                  "parameters/imageType": h.image_type}
        if h.pixel_spacing:
            fields["parameters/voxelRes/x"] = _number(h.pixel_spacing[1])
            fields["parameters/voxelRes/y"] = _number(h.pixel_spacing[0])
        if h.slice_thickness is not None:
            fields["parameters/voxelRes/z"] = _number(h.slice_thickness)
        if h.modality in ("MR", "CT"):  # petScanData's orientation is an integer code instead
            fields["parameters/orientation"] = h.orientation
        if h.modality == "MR":
            fields.update({"fieldStrength": h.field_strength, "parameters/tr": h.repetition_time,
                           "parameters/te": h.echo_time, "parameters/flip": h.flip_angle})
        if h.modality == "CT":
            fields["parameters/kvp"] = h.kvp
        return {k: v for k, v in fields.items() if v}


@dataclass
class Study:
    """One session: its series ordered by scan ID (numbers numerically)."""
    study_uid: str
    series: list[Series]

    @property
    def first(self) -> DicomInstance:
        return self.series[0].first

    @property
    def modality(self) -> str:
        present = {s.modality for s in self.series}
        return next((m for m in _SESSION_MODALITY_ORDER if m in present), self.first.modality)

    @property
    def xsi_type(self) -> str:
        prefix = _XSI_PREFIX.get(self.modality)
        return f"xnat:{prefix}SessionData" if prefix else "xnat:otherDicomSessionData"

    @property
    def instances(self) -> list[DicomInstance]:
        return [i for s in self.series for i in s.instances]

    def session_fields(self) -> dict[str, str]:
        """The session's data_fields as XNAT's DICOM session builder fills them."""
        h = next((s.first for s in self.series if s.modality == self.modality), self.first)
        fields = {"UID": self.study_uid, "date": h.study_date, "time": h.study_time,
                  "modality": self.modality, "scanner": h.station_name,
                  "scanner/manufacturer": h.manufacturer, "scanner/model": h.model,
                  "acquisition_site": h.institution_name, "dcmPatientName": h.patient_name,
                  "dcmPatientId": h.patient_id, "dcmPatientBirthDate": h.patient_birth_date,
                  "dcmAccessionNumber": h.accession_number, "session_type": h.study_description,
                  "study_id": h.study_id}
        if self.modality == "MR":
            fields["fieldStrength"] = h.field_strength
        return {k: v for k, v in fields.items() if v}


def read_instance(entry: str, head: bytes, size: int | None = None) -> DicomInstance | None:
    """Parse the first bytes of a file (`head`, up to its PixelData) or return None if not DICOM."""
    if head[128:132] != b"DICM":  # force=False would refuse it too; this skips pydicom's work
        return None
    try:
        ds = pydicom.dcmread(io.BytesIO(head), stop_before_pixels=True, force=False)
        study, series, sop = (str(ds.get(k, "") or "").strip() for k in
                              ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
        if not (study and series and sop):
            return None
        spacing = ds.get("PixelSpacing")
        return DicomInstance(
            entry=entry, size=len(head) if size is None else size, study_uid=study, series_uid=series,
            sop_uid=sop, sop_class_uid=_text(ds, "SOPClassUID"),
            transfer_syntax_uid=str(ds.file_meta.get("TransferSyntaxUID", "") or ""),
            modality=_text(ds, "Modality").upper(), series_number=_text(ds, "SeriesNumber"),
            instance_number=_int(ds.get("InstanceNumber")),
            series_description=_text(ds, "SeriesDescription"),
            study_description=_text(ds, "StudyDescription"), patient_name=_text(ds, "PatientName"),
            patient_id=_text(ds, "PatientID"), patient_birth_date=_date(_text(ds, "PatientBirthDate")),
            patient_sex=_text(ds, "PatientSex"), study_date=_date(_text(ds, "StudyDate")),
            study_time=_time(_text(ds, "StudyTime")), series_time=_time(_text(ds, "SeriesTime")),
            accession_number=_text(ds, "AccessionNumber"), study_id=_text(ds, "StudyID"),
            manufacturer=_text(ds, "Manufacturer"), model=_text(ds, "ManufacturerModelName"),
            station_name=_text(ds, "StationName"), institution_name=_text(ds, "InstitutionName"),
            rows=_int(ds.get("Rows")), columns=_int(ds.get("Columns")),
            frames=_int(ds.get("NumberOfFrames")) or 1,
            pixel_spacing=_spacing(spacing),
            slice_thickness=_float(ds.get("SliceThickness")),
            orientation=_orientation(ds.get("ImageOrientationPatient")),
            image_type="\\".join(str(v) for v in ds.ImageType) if ds.get("ImageType") else "",
            field_strength=_text(ds, "MagneticFieldStrength"), repetition_time=_text(ds, "RepetitionTime"),
            echo_time=_text(ds, "EchoTime"), flip_angle=_text(ds, "FlipAngle"), kvp=_text(ds, "KVP"))
    except _PARSE_ERRORS:
        return None


def group_studies(instances: list[DicomInstance]) -> list[Study]:
    """Studies in order of first appearance; scan ID = SeriesNumber (see `_scan_ids` for clashes)."""
    by_study: dict[str, dict[str, list[DicomInstance]]] = {}
    seen: dict[str, set[str]] = {}
    dupes: dict[str, list[DicomInstance]] = {}
    for inst in instances:
        series = by_study.setdefault(inst.study_uid, {})
        sops = seen.setdefault(inst.study_uid, set())
        if inst.sop_uid in sops:
            dupes.setdefault(inst.series_uid, []).append(inst)
            continue
        sops.add(inst.sop_uid)
        series.setdefault(inst.series_uid, []).append(inst)
    studies = []
    for study_uid, series_map in by_study.items():
        ordered = sorted(series_map.items(), key=lambda kv: (_number_key(kv[1][0].series_number), kv[0]))
        ids = _scan_ids([members[0].series_number for _, members in ordered])
        studies.append(Study(study_uid, [
            Series(scan_id, uid, sorted(members, key=_instance_key), dupes.get(uid, []))
            for scan_id, (uid, members) in zip(ids, ordered)]))
    return studies


def _scan_ids(numbers: list[str]) -> list[str]:
    """SeriesNumber as the scan ID; a repeated number gets "-2", "-3"…; a missing one the next free integer."""
    used = {n for n in numbers if n}
    ids, counts, counter = [], {}, 0
    for number in numbers:
        if number:
            counts[number] = counts.get(number, 0) + 1
            ids.append(number if counts[number] == 1 else f"{number}-{counts[number]}")
            continue
        counter += 1
        while str(counter) in used:
            counter += 1
        used.add(str(counter))
        ids.append(str(counter))
    return ids


# ---- value formatting (XNAT's shapes) -----------------------------------------------------------
def _text(ds: pydicom.Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value).strip()
    return str(value).strip()


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None


def _float(value: object) -> float | None:
    try:
        return float(value) if value not in (None, "") else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _spacing(value: object) -> tuple[float, float] | None:
    try:
        row, column = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return row, column


def _date(value: str) -> str:
    digits = value.replace(".", "").replace("-", "")
    if len(digits) >= 8 and digits[:8].isdigit():
        return f"{digits[0:4]}-{digits[4:6]}-{digits[6:8]}"
    return ""


def _time(value: str) -> str:
    digits = value.replace(":", "").split(".")[0]
    if len(digits) >= 2 and digits.isdigit():
        digits = (digits + "0000")[:6]
        return f"{digits[0:2]}:{digits[2:4]}:{digits[4:6]}"
    return ""


def _orientation(iop: object) -> str:
    """XNAT's plane name from ImageOrientationPatient: the axis of the slice normal."""
    try:
        r = [float(v) for v in iop]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return ""
    if len(r) != 6:
        return ""
    normal = [abs(r[1] * r[5] - r[2] * r[4]), abs(r[2] * r[3] - r[0] * r[5]), abs(r[0] * r[4] - r[1] * r[3])]
    return ("Sag", "Cor", "Tra")[normal.index(max(normal))]


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _number_key(series_number: str) -> tuple:
    return (0, int(series_number), "") if series_number.isdigit() else (1, 0, series_number)


def _instance_key(inst: DicomInstance) -> tuple:
    return (inst.instance_number is None, inst.instance_number or 0, inst.entry)
