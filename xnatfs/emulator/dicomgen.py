"""Synthetic DICOM series for the emulator's sample data, tests and benchmarks.

Owns: building a multi-slice MR, CT or PET series with pydicom, one encoded Part-10 file per slice,
that real tools accept (dcm2niix turns one series into one volume: the tags it needs are listed in
the project's testing notes under "DICOM test data"). Also a deterministic UID helper and zip and
tar helpers (`make_zip`, `make_tar`) for upload and import tests.

Determinism is the contract: the same arguments give byte-identical files. Nothing reads the clock;
UIDs come from `make_uid` (a hash of its inputs); pixel values come from `seed`.

Geometry: axial slices (ImageOrientationPatient 1\\0\\0\\0\\1\\0), centred on the origin in x/y,
stepping +z by `slice_thickness`; ImagePositionPatient, SliceLocation and InstanceNumber agree.
Pixels: a 3-D ellipsoid phantom with two inner structures and seeded noise (never all zero).
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_ROOT_UID, generate_uid

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
SOP_CLASS_BY_MODALITY = {"MR": MR_IMAGE_STORAGE, "CT": CT_IMAGE_STORAGE, "PT": PET_IMAGE_STORAGE}

#: Fixed zip entry time: zip headers carry a timestamp, so a fixed one keeps `make_zip` deterministic.
ZIP_DATE_TIME = (2024, 1, 1, 0, 0, 0)


def make_uid(*parts: str) -> str:
    """A valid DICOM UID derived only from `parts` (same parts → same UID), under pydicom's root."""
    if not parts:
        raise ValueError("make_uid needs at least one part, or the UID would be random")
    return generate_uid(PYDICOM_ROOT_UID, entropy_srcs=[str(p) for p in parts])


def make_zip(files: dict[str, bytes]) -> bytes:
    """A deflated zip of `files` (archive name → bytes) in the given order, with fixed timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            archive.writestr(info, data)
    return buffer.getvalue()


def make_tar(files: dict[str, bytes], *, gzipped: bool = False, prefix: str = "") -> bytes:
    """A tar (gzipped: a .tar.gz) of `files` as regular entries named `prefix` + name, in the given
    order; times and owners are zero, so the bytes depend only on the arguments."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0) if gzipped else buffer.getvalue()


def make_series(*, study_uid: str, series_uid: str, frame_of_reference_uid: str, patient_name: str,
                patient_id: str, modality: str, series_number: int, series_description: str,
                study_date: str, study_time: str, rows: int = 64, columns: int = 64, slices: int = 16,
                manufacturer: str = "GE MEDICAL SYSTEMS", model: str = "SIGNA Premier", seed: int = 0,
                study_description: str = "", accession_number: str = "", station_name: str = "",
                institution_name: str = "", patient_sex: str = "", patient_birth_date: str = "",
                pixel_spacing: float = 3.0, slice_thickness: float = 3.0, volumes: int = 1,
                repetition_time_ms: float = 2000.0,
                diffusion: tuple[tuple[float, tuple[float, float, float]], ...] = ()) -> list[bytes]:
    """One encoded DICOM file per slice (InstanceNumber 1..slices), explicit VR little endian.

    ``volumes`` > 1 (MR only) makes a time series, as a BOLD run is stored: the same slice positions
    repeated once per volume, InstanceNumber running on (1..slices*volumes), TemporalPositionIdentifier
    and AcquisitionNumber the volume (1-based), acquisition times ``repetition_time_ms`` apart, and
    RepetitionTime set to it; dcm2niix stacks it into one 4-D image. ``volumes == 1`` gives exactly the
    files it always gave. ``diffusion`` (one ``(b-value, unit gradient direction)`` per volume) makes it
    a diffusion series: the standard DiffusionBValue and DiffusionGradientOrientation of each volume,
    which dcm2niix turns into ``.bval``/``.bvec`` (checked with the Philips manufacturer string).

    Dates and times may be given as DICOM (`20240115`, `093000`) or XNAT (`2024-01-15`, `09:30:00`)
    strings; they are written in DICOM form. MR: unsigned 16-bit magnitude. CT: signed 16-bit with
    RescaleIntercept -1024 / RescaleSlope 1 (HU). PT: unsigned 16-bit with RescaleSlope, Units BQML.
    """
    modality = modality.upper()
    if modality not in SOP_CLASS_BY_MODALITY:
        raise ValueError(f"modality must be one of {sorted(SOP_CLASS_BY_MODALITY)}, not {modality!r}")
    if rows < 8 or columns < 8 or slices < 1 or volumes < 1:
        raise ValueError("a series needs at least 8x8 pixels, one slice and one volume")
    if volumes > 1 and modality != "MR":
        raise ValueError("only an MR series can be a time series")
    if diffusion and len(diffusion) != volumes:
        raise ValueError("a diffusion series needs one (b-value, direction) per volume")
    study_date, study_time = _dicom_date(study_date), _dicom_time(study_time)
    volume = _phantom(modality, rows, columns, slices, seed)
    ds = _series_dataset(
        modality=modality, slices=slices, study_uid=study_uid, series_uid=series_uid,
        frame_of_reference_uid=frame_of_reference_uid, patient_name=patient_name,
        patient_id=patient_id, series_number=series_number, series_description=series_description,
        study_date=study_date, study_time=study_time, rows=rows, columns=columns,
        manufacturer=manufacturer, model=model, study_description=study_description,
        accession_number=accession_number, station_name=station_name,
        institution_name=institution_name, patient_sex=patient_sex,
        patient_birth_date=_dicom_date(patient_birth_date) if patient_birth_date else "",
        pixel_spacing=pixel_spacing, slice_thickness=slice_thickness)
    if volumes > 1:
        ds.RepetitionTime = _ds(repetition_time_ms)
        ds.NumberOfTemporalPositions = volumes
    files = []
    for number in range(slices * volumes):  # one dataset, re-stamped per slice: pydicom encodes on save_as
        index, volume_index = number % slices, number // slices
        sop_uid = make_uid(series_uid, "instance", str(number + 1))
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = number + 1
        if volumes > 1:
            ds.TemporalPositionIdentifier = volume_index + 1
            ds.AcquisitionNumber = volume_index + 1
            ds.AcquisitionTime = _add_seconds(ds.SeriesTime, volume_index * repetition_time_ms / 1000.0)
        if diffusion:
            b_value, direction = diffusion[volume_index]
            ds.DiffusionBValue = float(b_value)
            ds.DiffusionGradientOrientation = [float(c) for c in direction]
        z = round(index * slice_thickness - (slices - 1) * slice_thickness / 2, 4)
        ds.ImagePositionPatient = [_ds(-(columns - 1) * pixel_spacing / 2),
                                   _ds(-(rows - 1) * pixel_spacing / 2), _ds(z)]
        ds.SliceLocation = _ds(z)
        if modality == "PT":
            ds.ImageIndex = index + 1
        ds.PixelData = (volume[index] if volume_index == 0 else _drift(volume[index], volume_index)).tobytes()
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        files.append(buffer.getvalue())
    return files


def _series_dataset(*, modality: str, slices: int, study_uid: str, series_uid: str,
                    frame_of_reference_uid: str, patient_name: str, patient_id: str,
                    series_number: int, series_description: str, study_date: str, study_time: str,
                    rows: int, columns: int, manufacturer: str, model: str, study_description: str,
                    accession_number: str, station_name: str, institution_name: str,
                    patient_sex: str, patient_birth_date: str, pixel_spacing: float,
                    slice_thickness: float) -> Dataset:
    """Everything but the per-slice elements (SOPInstanceUID, InstanceNumber, position, pixels)."""
    sop_class = SOP_CLASS_BY_MODALITY[modality]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"] if modality != "MR" else ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ""
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study_date
    series_time = _add_minutes(study_time, int(series_number))
    ds.StudyTime = study_time
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = series_time
    ds.AccessionNumber = accession_number
    ds.Modality = modality
    ds.Manufacturer = manufacturer
    ds.InstitutionName = institution_name
    ds.ReferringPhysicianName = ""
    ds.StationName = station_name
    ds.StudyDescription = study_description
    ds.SeriesDescription = series_description
    ds.ManufacturerModelName = model
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = patient_birth_date
    ds.PatientSex = patient_sex
    ds.BodyPartExamined = "HEAD"
    ds.SliceThickness = _ds(slice_thickness)
    ds.ProtocolName = series_description
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = int(series_number)
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = 1
    ds.ImagePositionPatient = [0, 0, 0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = [_ds(pixel_spacing), _ds(pixel_spacing)]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if modality == "CT" else 0
    _add_modality_tags(ds, modality, slices, study_time, slice_thickness)
    return ds


def _add_modality_tags(ds: Dataset, modality: str, slices: int, study_time: str,
                       slice_thickness: float) -> None:
    if modality == "MR":
        ds.ScanningSequence = "GR"
        ds.SequenceVariant = "SP"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = "500"
        ds.EchoTime = "15"
        ds.FlipAngle = "30"
        ds.MagneticFieldStrength = "3"
        ds.ImagingFrequency = "123.2"
        ds.SpacingBetweenSlices = _ds(slice_thickness)
        ds.WindowCenter, ds.WindowWidth = "600", "1200"
    elif modality == "CT":
        ds.KVP = "120"
        ds.ConvolutionKernel = "STANDARD"
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter, ds.WindowWidth = "40", "400"
    else:  # PT
        ds.Units = "BQML"
        ds.DecayCorrection = "START"
        ds.CorrectedImage = ["DECY", "ATTN"]
        ds.SeriesType = ["STATIC", "IMAGE"]
        ds.NumberOfSlices = slices
        ds.ImageIndex = 1
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = "0.5"
        drug = Dataset()
        drug.Radiopharmaceutical = "Fluorodeoxyglucose"
        drug.RadiopharmaceuticalStartTime = study_time
        drug.RadionuclideTotalDose = "370000000"
        drug.RadionuclideHalfLife = "6586.2"
        ds.RadiopharmaceuticalInformationSequence = Sequence([drug])


def _phantom(modality: str, rows: int, columns: int, slices: int, seed: int) -> np.ndarray:
    """A (slices, rows, columns) little-endian int16/uint16 volume: ellipsoid head, two blobs, noise."""
    z, y, x = np.meshgrid(np.linspace(-1, 1, slices) if slices > 1 else np.zeros(1),
                          np.linspace(-1, 1, rows), np.linspace(-1, 1, columns), indexing="ij")
    head = (x / 0.85) ** 2 + (y / 0.95) ** 2 + (z / 1.15) ** 2 <= 1.0
    left = ((x + 0.3) / 0.22) ** 2 + (y / 0.35) ** 2 + (z / 0.6) ** 2 <= 1.0
    right = ((x - 0.35) / 0.15) ** 2 + ((y + 0.2) / 0.15) ** 2 + (z / 0.4) ** 2 <= 1.0
    noise = np.random.default_rng(seed).normal(0.0, 1.0, size=head.shape)
    if modality == "CT":  # stored = HU + 1024: air -1000, tissue 40, bone-ish 700
        hu = np.where(head, 40.0, -1000.0) + 660.0 * left - 30.0 * right + 8.0 * noise
        return np.clip(np.rint(hu + 1024), -2048, 4095).astype("<i2")
    base, inner, hot = (800.0, 400.0, -300.0) if modality == "MR" else (300.0, 200.0, 2500.0)
    values = base * head + inner * left + hot * right * head + 15.0 * noise * head + 5.0
    return np.clip(np.rint(values), 0, 65535).astype("<u2")


def _dicom_date(value: str) -> str:
    text = value.replace("-", "").replace(".", "")
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"not a date (YYYYMMDD or YYYY-MM-DD): {value!r}")
    return text


def _dicom_time(value: str) -> str:
    text = value.replace(":", "")
    if len(text.split(".")[0]) != 6 or not text.split(".")[0].isdigit():
        raise ValueError(f"not a time (HHMMSS or HH:MM:SS): {value!r}")
    return text


def _add_minutes(dicom_time: str, minutes: int) -> str:
    """Series start times: the study time plus a few minutes per series, wrapping at midnight."""
    hours, mins, secs = int(dicom_time[0:2]), int(dicom_time[2:4]), int(dicom_time[4:6])
    total = (hours * 3600 + mins * 60 + secs + minutes * 60) % 86400
    return f"{total // 3600:02d}{total % 3600 // 60:02d}{total % 60:02d}"


def _add_seconds(dicom_time: str, seconds: float) -> str:
    """A DICOM time ``seconds`` later (fractions kept to milliseconds), wrapping at midnight."""
    base = int(dicom_time[0:2]) * 3600 + int(dicom_time[2:4]) * 60 + int(dicom_time[4:6])
    total = (base + seconds) % 86400
    whole = int(total)
    return f"{whole // 3600:02d}{whole % 3600 // 60:02d}{whole % 60:02d}.{int(round((total - whole) * 1000)):03d}"


def _drift(plane: np.ndarray, volume_index: int) -> np.ndarray:
    """A later volume's slice: the first volume's, with a small deterministic signal change."""
    return np.clip(plane.astype(np.int64) + (volume_index % 7) * 3, 0, 65535).astype(plane.dtype)


def _ds(value: float) -> str:
    """A DS (decimal string) value: at most 16 characters, no needless trailing zeros."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
