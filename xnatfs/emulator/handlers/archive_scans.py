"""Scans, reconstructions and image assessors of a session (spec §11; SRC ScanList, ScanResource,
ReconList, ReconResource, ProjSubExptAsstList, ExptAssessmentResource).

Every route exists under each experiment path (``/projects/{P}/subjects/{S}/experiments/{E}``,
``/projects/{P}/experiments/{E}``, ``/experiments/{E}``), with and without ``/archive``.

* scans: columns ``xnat_imagescandata_id, ID, type, quality, xsiType, note, series_description`` +
  ``URI`` = ``/data/experiments/<E>/scans/<ID>``; ``PUT`` → 200 empty; a new scan needs ``xsiType``
  (417 "Need PUT Contents"), a concrete one (400 for ``xnat:imageScanData``), and an existing scan
  keeps its type (409);
* reconstructions: ``xnat_reconstructedimagedata_id, ID, type, baseScanType`` + ``URI``;
* assessors: ``ID, project, label, date, xsiType, insert_date, session_ID, session_label,
  xnat:imageassessordata/id`` + ``URI`` = ``/data/experiments/<A>``, title
  "Project Subject Experiment Assessors"; ``PUT`` answers like an experiment (201/200 + ID).
"""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from xnatfs.emulator import resolve
from xnatfs.emulator.app import Context, data_rules
from xnatfs.emulator.handlers.archive_common import Submission, accession, check_label, empty, listing
from xnatfs.emulator.handlers.archive_experiments import experiment_records, update_experiment
from xnatfs.emulator.handlers.archive_fields import record
from xnatfs.emulator.handlers.archive_render import assessor_item, object_response, recon_item, scan_item
from xnatfs.emulator.items import schema
from xnatfs.emulator.responses import HTTPError
from xnatfs.emulator.store import Experiment

SCAN_COLUMNS = [("xnat_imagescandata_id", "xnat_imagescandata_id"), ("ID", "ID"), ("type", "type"),
                ("quality", "quality"), ("xsiType", "xsiType"), ("note", "note"),
                ("series_description", "series_description")]
RECON_COLUMNS = [("xnat_reconstructedimagedata_id", "xnat_reconstructedimagedata_id"), ("ID", "ID"),
                 ("type", "type"), ("baseScanType", "baseScanType")]
ASSESSOR_COLUMNS = [("ID", "ID"), ("project", "project"), ("label", "label"), ("date", "date"),
                    ("xsiType", "xsiType"), ("insert_date", "insert_date"), ("session_ID", "session_ID"),
                    ("session_label", "session_label"), ("xnat:imageassessordata/id", "ID")]
GENERIC_SCAN_TYPE = "xnat:imageScanData"


def _session(ctx: Context, values: dict) -> Experiment:
    return resolve.experiment(ctx.store, values["experiment"], values.get("project"), values.get("subject"))


# ---- scans ---------------------------------------------------------------------------------------
def list_scans(ctx: Context, **values: str) -> Response:
    session = _session(ctx, values)
    records = [record(s) for s in ctx.store.list_scans(session.id)]
    return listing(ctx, "scan", records, SCAN_COLUMNS, "xnat:imageScanData",
                   lambda r: f"/data/experiments/{session.id}/scans/{r['ID']}")


def get_scan(ctx: Context, scan: str, **values: str) -> Response:
    session = _session(ctx, values)
    return object_response(ctx, scan_item(ctx.store, resolve.scan(ctx.store, session, scan), session))


def put_scan(ctx: Context, scan: str, **values: str) -> Response:
    try:
        session = _session(ctx, values)
    except HTTPError as exc:
        raise HTTPError(404, "Specified image session doesn't exist.") if "experiment" in exc.message else exc
    existing = ctx.store.get_scan(session.id, scan)
    submission = Submission(ctx, "scan", None, existing.xsi_type if existing else "xnat:imageScanData")
    fields = submission.fields
    fields.pop("image_session_ID", None)
    if existing is None:
        if submission.xsi_type is None:
            raise HTTPError(417, "Need PUT Contents")
        if submission.xsi_type == GENERIC_SCAN_TYPE:
            raise HTTPError(400, "Multiple scan modalities can be associated here.  Please retry with the "
                                 "specification of a particular modality (i.e. ?xsiType=xnat:mrScanData).")
        submission.check_unchanged("ID", scan, 400, "ID cannot be modified")
        ctx.store.create_scan(session.id, scan, submission.xsi_type, fields)
        return empty()
    if submission.query_type and submission.query_type != existing.xsi_type:
        raise HTTPError(409, "Specified xsiType differs from existing xsiType")
    submission.check_unchanged("ID", existing.id, 400, "ID cannot be modified")
    if fields:
        ctx.store.update_scan(session.id, existing.id, fields)
    return empty()


def delete_scan(ctx: Context, scan: str, **values: str) -> Response:
    session = _session(ctx, values)
    ctx.store.delete_scan(session.id, resolve.scan(ctx.store, session, scan).id)
    return empty()


# ---- reconstructions -----------------------------------------------------------------------------
def list_recons(ctx: Context, **values: str) -> Response:
    session = _session(ctx, values)
    records = [record(r) for r in ctx.store.list_reconstructions(session.id)]
    return listing(ctx, "reconstruction", records, RECON_COLUMNS, "xnat:reconstructedImageData",
                   lambda r: f"/data/experiments/{session.id}/reconstructions/{r['ID']}")


def get_recon(ctx: Context, recon: str, **values: str) -> Response:
    session = _session(ctx, values)
    return object_response(ctx, recon_item(ctx.store, resolve.reconstruction(ctx.store, session, recon)))


def put_recon(ctx: Context, recon: str, **values: str) -> Response:
    session = _session(ctx, values)
    existing = ctx.store.get_reconstruction(session.id, recon)
    submission = Submission(ctx, "reconstruction", "xnat:reconstructedImageData",
                            existing.xsi_type if existing else None)
    fields = submission.fields
    fields.pop("image_session_ID", None)
    submission.check_unchanged("ID", recon, 400, "ID cannot be modified")
    if existing is None:
        ctx.store.create_reconstruction(session.id, recon, submission.xsi_type or "", fields)
    elif fields:
        ctx.store.update_reconstruction(session.id, existing.id, fields)
    return empty()


def delete_recon(ctx: Context, recon: str, **values: str) -> Response:
    session = _session(ctx, values)
    ctx.store.delete_reconstruction(session.id, resolve.reconstruction(ctx.store, session, recon).id)
    return empty()


# ---- assessors -----------------------------------------------------------------------------------
def list_assessors(ctx: Context, **values: str) -> Response:
    session = _session(ctx, values)
    records = experiment_records(ctx.store, ctx.store.list_experiments(session_id=session.id))
    return listing(ctx, "experiment", records, ASSESSOR_COLUMNS, "xnat:imageAssessorData",
                   lambda r: f"/data/experiments/{r['ID']}",
                   meta={"title": "Project Subject Experiment Assessors"})


def get_assessor(ctx: Context, assessor: str, **values: str) -> Response:
    session = _session(ctx, values)
    return object_response(ctx, assessor_item(ctx.store, resolve.assessor(ctx.store, session, assessor)))


def put_assessor(ctx: Context, assessor: str, **values: str) -> Response:
    session = _session(ctx, values)
    try:
        existing: Experiment | None = resolve.assessor(ctx.store, session, assessor)
    except HTTPError:
        existing = None
    submission = Submission(ctx, "experiment", None, existing.xsi_type if existing else "xnat:imageAssessorData")
    if existing is not None:
        if submission.rename == existing.label:
            submission.rename = None  # xnatpy sends label= on creation; the same label is no rename
        return update_experiment(ctx, existing, submission)
    if submission.xsi_type is None:
        raise HTTPError(417, "Need PUT Contents")
    for key in ("ID", "project", "subject_ID", "imageSession_ID"):
        submission.pop(key)
    label = submission.pop("label") or submission.rename or assessor
    check_label(label)
    own_scans = submission.document.children.get("scans/scan") if submission.document else None
    if own_scans and schema().element(submission.xsi_type, "scans") is not None:
        # a QC assessor's scans/scan are its own child items (xnat:qcAssessmentData_scan), not scans
        submission.fields["scans/scan"] = [dict(doc.fields) for doc in own_scans]
    created = ctx.store.create_assessor(session.id, label, submission.xsi_type, submission.fields,
                                        user=ctx.user or "admin")
    return accession(created.id, created=True)


def delete_assessor(ctx: Context, assessor: str, **values: str) -> Response:
    session = _session(ctx, values)
    ctx.store.delete_experiment(resolve.assessor(ctx.store, session, assessor).id)
    return empty()


def routes() -> list[Rule]:
    table = (
        ("scans", "<scan>", list_scans, get_scan, put_scan, delete_scan),
        ("reconstructions", "<recon>", list_recons, get_recon, put_recon, delete_recon),
        ("assessors", "<assessor>", list_assessors, get_assessor, put_assessor, delete_assessor),
    )
    rules: list[Rule] = []
    for base in resolve.EXPERIMENT_PATHS:
        for collection, variable, list_view, get_view, put_view, delete_view in table:
            rules += data_rules(f"{base}/{collection}", list_view, ["GET"])
            for view, method in ((get_view, "GET"), (put_view, "PUT"), (delete_view, "DELETE")):
                rules += data_rules(f"{base}/{collection}/{variable}", view, [method])
    return rules
