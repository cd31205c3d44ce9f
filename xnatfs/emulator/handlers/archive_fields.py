"""Field names of archive objects: XNAT's shortcut keys, XML paths, and how they map to the Store.

XNAT lets a client name a field two ways, in ``columns=``, in filters and in ``PUT`` query strings
(spec §8.1, §9.1, §10.1, §11.1, SRC XMLPathShortcuts): a shortcut key (``gender``, ``date``,
``series_description``) or an XML path from the root type (``xnat:subjectData/demographics
[@xsi:type=xnat:demographicData]/gender``, ``xnat:mrSessionData/date``). Both land on one *path*
relative to the object (``demographics/gender``, ``date``), which is also the key of the object's
flat *record* (:func:`record`) that listings and item rendering read.

The Store keys fields by these paths too, except a subject's demographics, kept flat (``gender``).
"""

from __future__ import annotations

import datetime
import fnmatch
import re
from typing import Any, Callable, Mapping

from werkzeug.datastructures import MultiDict

from xnatfs.emulator.items import schema
from xnatfs.emulator.responses import HTTPError, cell
from xnatfs.emulator.store import Experiment, Project, Reconstruction, Scan, Subject

DEMOGRAPHICS = ("dob", "yob", "age", "gender", "handedness", "ses", "education", "educationDesc", "race",
                "ethnicity", "weight", "height", "gestational_age", "post_menstrual_age", "birth_weight")

_VALIDATION = {"validation_method": "validation/method", "validation_status": "validation/status",
               "validation_date": "validation/date", "validation_notes": "validation/notes"}
_PI = {"pi_firstname": "investigator/firstname", "pi_lastname": "investigator/lastname"}

#: shortcut key → path, per kind (SRC XMLPathShortcuts; read-only keys map to virtual record keys).
SHORTCUTS: dict[str, dict[str, str]] = {
    "project": {"ID": "ID", "secondary_ID": "secondary_ID", "name": "name", "description": "description",
                "keywords": "keywords", "alias": "aliases/alias", "pi_firstname": "PI/firstname",
                "pi_lastname": "PI/lastname", "insert_date": "insert_date", "insert_user": "insert_user"},
    "subject": {"ID": "ID", "project": "project", "label": "label", "group": "group", "src": "src", **_PI,
                **{name: f"demographics/{name}" for name in DEMOGRAPHICS},
                "insert_date": "insert_date", "insert_user": "insert_user", "last_modified": "last_modified"},
    "experiment": {name: name for name in (
        "ID", "visit_id", "visit", "protocol", "date", "time", "note", "project", "label", "scanner",
        "operator", "dcmAccessionNumber", "dcmPatientId", "dcmPatientName", "session_type", "modality",
        "UID", "coil", "fieldStrength", "marker", "stabilization", "studyType", "patientID", "patientName",
        "subject_ID", "subject_label", "subject_project", "session_ID", "session_label", "session_project",
        "insert_date", "insert_user", "last_modified", "xsiType")},
    "scan": {name: name for name in (
        "ID", "type", "UID", "note", "quality", "condition", "series_description", "documentation",
        "scanner", "modality", "frames", "coil", "fieldStrength", "marker", "stabilization",
        "xnat_imagescandata_id", "insert_date", "insert_user", "last_modified", "xsiType")},
    "reconstruction": {name: name for name in (
        "ID", "type", "baseScanType", "xnat_reconstructedimagedata_id", "insert_date", "xsiType")},
}
SHORTCUTS["experiment"].update({**_PI, **_VALIDATION, "studyInstanceUID": "UID",
                                "scan_start_time": "start_time_scan",
                                "injection_start_time": "start_time_injection",
                                "tracer_name": "tracer/name", "tracer_dose": "tracer/dose",
                                "tracer_isotope": "tracer/isotope"})
SHORTCUTS["scan"].update({**_VALIDATION, "scanTime": "startTime"})
SHORTCUTS["scan"].update({name: f"parameters/{name}" for name in (
    "orientation", "originalFileName", "systemType", "fileType", "transaxialFOV", "acqType", "facility",
    "numPlanes", "numFrames", "numGates", "planeSeparation", "binSize", "dataType")})

#: Keys that are never fields: paging, formats, XNAT's action switches, audit and CSRF parameters.
CONTROL_PARAMS = {"format", "columns", "xsitype", "req_format", "inbody", "allowdatadeletion", "removefiles",
                  "triggerpipelines", "fixscantypes", "pulldatafromheaders", "loadexisting", "event_reason",
                  "event_type", "event_action", "event_comment", "event_id", "xnat_csrf", "limit", "offset",
                  "sortby", "sortorder", "overwrite", "accessibility", "primary", "handler",
                  "concealhiddenfields", "includehistory", "includeheaders", "all", "recursive"}
READ_ONLY = {"insert_date", "insert_user", "last_modified", "xsiType", "xnat_imagescandata_id",
             "xnat_reconstructedimagedata_id", "subject_label", "subject_project", "session_ID",
             "session_label", "session_project"}

_PREDICATE = re.compile(r"\[@?xsi:type=[^\]]*\]")
_CUSTOM_FIELD = re.compile(r"^fields/field\[name=([^\]]+)\]/(field|name)$")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


# ---- records: the flat view of an object -----------------------------------------------------------
def record(obj: Project | Subject | Experiment | Scan | Reconstruction, **extra: Any) -> dict[str, Any]:
    """Every field of an object keyed by path, plus XNAT's read-only and virtual columns."""
    # custom fields, child collections (lists, e.g. a QC assessor's "scans/scan") and a project's
    # "settings" (a dict, archive_project_settings) are no columns
    fields = {k: v for k, v in obj.fields.items() if k != "fields" and not isinstance(v, (list, dict))}
    if isinstance(obj, Project):
        rec = {"ID": obj.id, "secondary_ID": obj.secondary_id, "name": obj.name,
               "description": obj.description, **fields}
        rec.update(insert_date=obj.insert_date, insert_user=obj.insert_user)
    elif isinstance(obj, Subject):
        rec = {"ID": obj.id, "project": obj.project, "label": obj.label}
        rec.update({(f"demographics/{k}" if k in DEMOGRAPHICS else k): v for k, v in fields.items()})
        rec.update(insert_date=obj.insert_date, insert_user=obj.insert_user, last_modified=obj.insert_date)
    elif isinstance(obj, Experiment):
        rec = {"ID": obj.id, "project": obj.project, "label": obj.label, "subject_ID": obj.subject_id,
               **fields, "xsiType": obj.xsi_type, "insert_date": obj.insert_date,
               "insert_user": obj.insert_user, "last_modified": obj.insert_date}
        if obj.session_id:
            rec["imageSession_ID"] = obj.session_id
            rec["session_ID"] = obj.session_id
    elif isinstance(obj, Scan):
        rec = {"ID": obj.id, **fields, "image_session_ID": obj.experiment_id, "xsiType": obj.xsi_type,
               "xnat_imagescandata_id": obj.pk, "insert_date": obj.insert_date, "insert_user": "admin",
               "last_modified": obj.insert_date}
    else:
        rec = {"ID": obj.id, **fields, "image_session_ID": obj.experiment_id, "xsiType": obj.xsi_type,
               "xnat_reconstructedimagedata_id": obj.pk, "insert_date": obj.insert_date}
    rec.update(extra)
    return rec


def store_key(kind: str, path: str) -> str:
    """Where a path lives in the Store's field dict."""
    if kind == "subject" and path.startswith("demographics/"):
        return path[len("demographics/"):]
    return path


# ---- names in requests ---------------------------------------------------------------------------
def path_of(kind: str, name: str, root_type: str) -> str | None:
    """A shortcut key (case-insensitive) or ``<ns>:<type>/<path>`` XML path → the relative path,
    spelled as the schema spells it (XFT matches names case-insensitively: ``.../id`` is ``ID``)."""
    shortcuts = SHORTCUTS[kind]
    if name in shortcuts:
        return shortcuts[name]
    lower = {key.lower(): value for key, value in shortcuts.items()}
    if name.lower() in lower:
        return lower[name.lower()]
    head, sep, rest = name.partition("/")
    if sep and ":" in head and rest:
        rest = _PREDICATE.sub("", rest)
        joined = joined_path(kind, head, rest) if kind == "experiment" else None
        return joined or schema().canonical_path(root_type, rest)
    return None


def joined_path(kind: str, head: str, rest: str) -> str | None:
    """An experiment listing may name fields of the experiment's subject or of its scans; XNAT's
    QueryOrganizer joins those tables (pyxnat's ``array`` relies on it). Subject fields with a
    read-only experiment shortcut (``subject_label`` = ``xnat:subjectData/label``, SRC
    XMLPathShortcuts) land on that key; other subject fields on ``subject:<path>``; scan fields on
    ``scan:<scan type>:<path>``, filled in one row per scan (:func:`scan_join_types`)."""
    sch = schema()
    if head.lower() == "xnat:subjectdata":
        path = sch.canonical_path("xnat:subjectData", rest)
        return {"label": "subject_label", "project": "subject_project", "ID": "subject_ID"}.get(
            path, f"subject:{path}")
    scan_type = next((t for t in sch.types if t.lower() == head.lower()), None)
    if scan_type and sch.is_a(scan_type, "xnat:imageScanData"):
        return f"scan:{scan_type}:{sch.canonical_path(scan_type, rest)}"
    return None


def _named_paths(args: Mapping[str, str], root_type: str) -> list[str]:
    """The record paths an experiment listing's ``columns=`` and filters name."""
    names = [n.strip() for n in (args.get("columns") or "").split(",")] + list(args.keys())
    paths = (path_of("experiment", name, root_type) if name and name.lower() not in CONTROL_PARAMS else None
             for name in names)
    return [path for path in paths if path]


def scan_join_types(args: Mapping[str, str], root_type: str) -> list[str]:
    """The scan types an experiment listing's ``columns=`` or filters name (empty: no scan join)."""
    types = []
    for path in _named_paths(args, root_type):
        if path.startswith("scan:"):
            scan_type = path.split(":", 3)[1] + ":" + path.split(":", 3)[2]
            if scan_type not in types:
                types.append(scan_type)
    return types


def joins_subject(args: Mapping[str, str], root_type: str) -> bool:
    """Whether an experiment listing's ``columns=`` or filters name a field of the subject
    (``subject:<path>``): only then is every row given its subject's fields."""
    return any(path.startswith("subject:") for path in _named_paths(args, root_type))


def column_name(kind: str, name: str, root_type: str) -> tuple[str, str] | None:
    """``columns=`` entry → (column name, record path); XNAT names a column by its shortcut when one
    maps to the path, else by the lower-cased XML path (spec §8.1)."""
    path = path_of(kind, name, root_type)
    if path is None:
        return None
    for key, value in SHORTCUTS[kind].items():
        if value == path and (key.lower() == name.lower() or "/" in name):
            return key, path
    return name.lower(), path


def listing_columns(args: Mapping[str, str], kind: str, default: list[tuple[str, str]],
                    root_type: str) -> list[tuple[str, str]]:
    """The (column, path) pairs of a listing: ``columns=`` or the defaults, ``URI`` always last."""
    requested = args.get("columns")
    if not requested or requested.strip().upper() == "DEFAULT":
        chosen = [c for c in default if c[0] != "URI"]
    else:
        chosen = []
        for name in requested.split(","):
            name = name.strip()
            found = column_name(kind, name, root_type) if name != "URI" else None
            if found and found[0] not in [c for c, _ in chosen]:
                chosen.append(found)
    return chosen + [("URI", "URI")]


def filter_records(args: MultiDict, kind: str, records: list[dict], root_type: str) -> list[dict]:
    """Query parameters naming a field filter the rows: comma = OR, ``*``/``%`` wildcards, and
    ``a-b`` ranges (``MM/DD/YYYY`` accepted) for date fields (spec §8.1, §10.1)."""
    for key in args:
        if key.lower() in CONTROL_PARAMS or key == "URI":
            continue
        path = path_of(kind, key, root_type)
        if path is None:
            continue
        is_date = schema().field_type(root_type, path) == "xs:date" or path == "date"
        # options are read (a bad date is a 400) before any row is looked at, so the answer does
        # not depend on whether rows exist
        matchers = [_matcher(o.strip(), is_date) for o in args.get(key, "").split(",") if o.strip()]
        records = [r for r in records if any(match(cell(r.get(path))) for match in matchers)]
    return records


def _matcher(option: str, is_date: bool) -> Callable[[str], bool]:
    if is_date:
        bounds = re.fullmatch(r"(\S+?)\s*-\s*(\S+)", option) if "/" in option else None
        if bounds:
            low, high = normalise_date(bounds.group(1)), normalise_date(bounds.group(2))
            return lambda value: bool(value) and low <= value <= high
        option = normalise_date(option) if "*" not in option else option
    pattern = option.replace("%", "*").lower()
    return lambda value: fnmatch.fnmatchcase(value.lower(), pattern)


def normalise_date(value: str) -> str:
    """XNAT stores ``YYYY-MM-DD``; PUTs and filters may say ``MM/DD/YYYY`` (spec §10.1, §10.3)."""
    value = value.strip()
    match = _US_DATE.match(value)
    try:
        if match:
            month, day, year = (int(g) for g in match.groups())
            return datetime.date(year, month, day).isoformat()
        if re.fullmatch(r"\d{8}", value):
            return datetime.datetime.strptime(value, "%Y%m%d").date().isoformat()
        return datetime.date.fromisoformat(value[:10]).isoformat()
    except ValueError as exc:
        raise HTTPError(400, f"Invalid date: {value}") from exc


def fields_from_query(args: MultiDict, kind: str, xsi_type: str) -> dict[str, Any]:
    """Field values of a create/update ``PUT``: keys are Store keys; ``"fields"`` holds custom fields.

    Core keys (``ID``, ``label``, ``project``, ``subject_ID``) stay in the dict for the caller.
    """
    fields: dict[str, Any] = {}
    for key in args:
        if key.lower() in CONTROL_PARAMS:
            continue
        value = args.get(key, "")
        head, sep, rest = key.partition("/")
        custom = _CUSTOM_FIELD.match(rest) if sep and ":" in head else None
        if custom:
            if custom.group(2) == "field":
                fields.setdefault("fields", {})[custom.group(1)] = value
            continue
        path = path_of(kind, key, xsi_type)
        if path is None or path in READ_ONLY or "[" in path or path.startswith(("subject:", "scan:")):
            continue
        fields[store_key(kind, path)] = convert(xsi_type, path, value)
    return fields


def convert(xsi_type: str, path: str, value: Any) -> Any:
    """A PUT value as XNAT would store it: dates to ``YYYY-MM-DD``; ``NULL`` clears the field."""
    if isinstance(value, str) and value not in ("", "NULL") and schema().field_type(xsi_type, path) == "xs:date":
        return normalise_date(value)
    return value
