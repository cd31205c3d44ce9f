"""URL path → archive object, with XNAT's lookup rules and 404 messages (spec §1, §9.2, §10.2, §11).

Every route that names an object uses the same variable names, so one resolver serves the archive
handlers and the resource/file handlers alike:

    <project>  project ID            <subject>  accession ID, or label within <project>
    <experiment>  accession ID, or label within <project> (and <subject> when given)
    <scan>  scan ID    <recon>  reconstruction ID    <assessor>  accession ID or label

``OWNER_PATTERNS`` lists every path (relative to ``/data``) that names a resource owner; resource and
file routes are built by appending ``/resources...`` or ``/files...`` to each.
"""

from __future__ import annotations

from typing import Any

from xnatfs.emulator.responses import HTTPError
from xnatfs.emulator.store import Experiment, Owner, Project, Reconstruction, Scan, Store, Subject

PROJECT_PATH = "/projects/<project>"
SUBJECT_PATHS = ("/projects/<project>/subjects/<subject>", "/subjects/<subject>")
EXPERIMENT_PATHS = (
    "/projects/<project>/subjects/<subject>/experiments/<experiment>",
    "/projects/<project>/experiments/<experiment>",
    "/experiments/<experiment>",
)
SCAN_PATHS = tuple(p + "/scans/<scan>" for p in EXPERIMENT_PATHS)
RECON_PATHS = tuple(p + "/reconstructions/<recon>" for p in EXPERIMENT_PATHS) + tuple(
    p + "/reconstructions/<recon>/<any(in,out):io>" for p in EXPERIMENT_PATHS)
ASSESSOR_PATHS = tuple(p + "/assessors/<assessor>" for p in EXPERIMENT_PATHS) + tuple(
    p + "/assessors/<assessor>/<any(in,out):io>" for p in EXPERIMENT_PATHS)

#: Every path naming something that can own resources, shallowest first.
OWNER_PATTERNS = (PROJECT_PATH, *SUBJECT_PATHS, *EXPERIMENT_PATHS, *SCAN_PATHS, *RECON_PATHS, *ASSESSOR_PATHS)


def project(store: Store, project_id: str) -> Project:
    found = store.get_project(project_id)
    if found is None:
        # XNAT's ProjectResource really says "experiment" here (spec §8.2).
        raise HTTPError(404, "Unable to find the specified experiment.")
    return found


def subject(store: Store, subject_ref: str, project_id: str | None = None) -> Subject:
    return subject_in(store, subject_ref, project(store, project_id) if project_id is not None else None)


def subject_in(store: Store, subject_ref: str, in_project: Project | None) -> Subject:
    """A subject by accession ID (``in_project`` None) or by ID or label within a project already
    resolved, so a URL's project is looked up once however deep the URL goes."""
    if in_project is None:
        found = store.get_subject(subject_ref)
        if found is None:
            raise HTTPError(404, "Unable to find the specified subject. When searching by subject ID only, you "
                                 "must specify the accession number and not the subject label, which is not unique "
                                 f"across the XNAT system. {subject_ref} is not a known subject accession ID.")
        return found
    found = store.find_subject(in_project.id, subject_ref)
    if found is None:
        raise HTTPError(404, f"Unable to find the specified subject. The project {in_project.id} does not contain "
                             f"a subject identifiable by the ID or label {subject_ref}.")
    return found


def experiment(store: Store, experiment_ref: str, project_id: str | None = None,
               subject_ref: str | None = None) -> Experiment:
    in_project = project(store, project_id) if project_id is not None else None
    in_subject = None
    if subject_ref is not None and in_project is not None:
        in_subject = subject_in(store, subject_ref, in_project)
    return experiment_in(store, experiment_ref, in_project, in_subject)


def experiment_in(store: Store, experiment_ref: str, in_project: Project | None,
                  in_subject: Subject | None = None) -> Experiment:
    """An experiment by accession ID (``in_project`` None), or by ID or label within a project (and
    subject) already resolved."""
    if in_project is None:
        found = store.get_experiment(experiment_ref)
    else:
        found = store.find_experiment(in_project.id, experiment_ref, in_subject.id if in_subject else None)
    if found is None:
        raise HTTPError(404, "Unable to find the specified experiment.")
    return found


def scan(store: Store, session: Experiment, scan_id: str) -> Scan:
    found = store.get_scan(session.id, scan_id)
    if found is None:
        raise HTTPError(404, "Unable to find the specified scan.")
    return found


def reconstruction(store: Store, session: Experiment, recon_id: str) -> Reconstruction:
    found = store.get_reconstruction(session.id, recon_id)
    if found is None:
        raise HTTPError(404, "Unable to find the specified reconstruction.")
    return found


def assessor(store: Store, session: Experiment, assessor_ref: str) -> Experiment:
    found = store.get_experiment(assessor_ref)
    if found is None or found.session_id != session.id:
        found = next((a for a in store.list_experiments(session_id=session.id)
                      if a.label == assessor_ref), None)
    if found is None:
        raise HTTPError(404, "Unable to find the specified experiment.")
    return found


def owner(store: Store, values: dict[str, Any]) -> Owner:
    """The deepest object named by a route's variables (see module docstring); 404s as XNAT words them."""
    project_id = values.get("project")
    if "experiment" not in values:
        if "subject" in values:
            return subject(store, values["subject"], project_id)
        return project(store, project_id)
    session = experiment(store, values["experiment"], project_id, values.get("subject"))
    if "scan" in values:
        return scan(store, session, values["scan"])
    if "recon" in values:
        return reconstruction(store, session, values["recon"])
    if "assessor" in values:
        return assessor(store, session, values["assessor"])
    return session
