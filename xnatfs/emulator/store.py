"""The emulator's archive: SQLite rows plus file bytes on disk, kept across restarts.

Everything the REST handlers, the importer and the sample data read or write goes through `Store`,
so one place owns accession IDs, label uniqueness, cascading deletes and where bytes live on disk.

Layout under `data_dir`: `xnat.db` (SQLite) and `archive/resources/<resource id>/<relative path>`
(file bytes), `tmp/` (spooled uploads). Nothing is ever written outside `data_dir`: relative paths
are checked by `check_relative_path` before they touch the disk.

This module is the one to import from: it assembles `Store` and re-exports the names of the modules
that hold the code, one concern each:

    store_rows     row dataclasses, row conversion, errors, now_string / merge_fields / natural_key
    store_db       data_dir layout, SQLite schema, the lock, transaction(), query(), counters
    store_files    resources and files (`ResourceFiles`), CHUNK, check_relative_path, md5_of, copy_stream
    store_archive  projects, subjects, experiments, scans, reconstructions (`ArchiveRecords`)
    store_sharing  shares of subjects/experiments into other projects, project roles (`SharedRecords`)

Scale: every lookup of one object is an index search (store_db.SCHEMA), so a request's cost does not
grow with the resource, project or site around it (tests/emulator/test_request_cost.py checks it).

Thread safety: one SQLite connection shared by all threads, serialised by `store.lock` (an RLock).
Reads are short; `transaction()` holds the lock for its whole body, so an import is all-or-nothing
and no other thread sees half of it.

Public API (stable; other modules may add tables of their own through `transaction()`/`query()`):

    Store(data_dir)                                   opens or creates the archive
    store.lock, store.db                              the RLock and the sqlite3 connection
    store.transaction() -> ctx manager yielding db    all-or-nothing; nests (inner ones join)
    store.query(sql, args=()) -> list[sqlite3.Row]    a read under the lock
    store.close()

    Projects:  create_project(id, *, name=None, secondary_id=None, description="", fields=None, user="admin")
               get_project(id_or_alias) / list_projects() / update_project(id, fields) / delete_project(id)
    Subjects:  create_subject(project, label, fields=None, *, user="admin")            -> Subject (XNAT_S00001)
               get_subject(id) / find_subject(project, id_or_label) / list_subjects(project=None)
               update_subject(id, fields=None, *, label=None) / delete_subject(id)
    Experiments (sessions and assessors share the XNAT_E counter):
               create_experiment(project, subject_id, label, xsi_type="xnat:mrSessionData", fields=None,
                                 *, session_id=None, user="admin")                    -> Experiment
               create_assessor(session_id, label, xsi_type="xnat:qcAssessmentData", fields=None)
               get_experiment(id) / find_experiment(project, id_or_label, subject_id=None)
               list_experiments(project=None, subject_id=None, *, session_id=None, assessors=False,
                                xsi_type=None)
               update_experiment(id, fields=None, *, label=None) / delete_experiment(id)
    Scans:     create_scan(experiment_id, scan_id, xsi_type="xnat:mrScanData", fields=None) -> Scan
               get_scan(experiment_id, scan_id) / get_scan_by_pk(pk) / list_scans(experiment_id)
               update_scan(experiment_id, scan_id, fields, xsi_type=None) / delete_scan(experiment_id, scan_id)
    Reconstructions: create_reconstruction(experiment_id, recon_id, xsi_type=..., fields=None)
               get_reconstruction / list_reconstructions / update_reconstruction / delete_reconstruction
    Resources (owner = a Project, Subject, Experiment, Scan or Reconstruction object):
               create_resource(owner, label, *, format="", content="", tags="", description="") -> Resource
               get_resource(id) / find_resource(owner, id_or_label) / list_resources(owner)
               list_resources_of_experiment(experiment_id, kinds) / delete_resource(id)
               owner_key(owner) -> (owner_kind, owner_ref, experiment_id)
    Files:     add_file(resource_id, relative_path, source: bytes | BinaryIO | Path, *, overwrite=False,
                        format="", content="", tags="", move=False, md5=None) -> FileRow
               get_file(resource_id, path) / list_files(resource_ids, prefix=None)  (prefix: case-sensitive)
               delete_file(resource_id, path) -> int (removes a folder prefix too)
               file_stats(resource_id) -> (count, size) / file_stats_many(resource_ids) -> {id: (count, size)}
                        (counters kept by triggers on every write: no file is counted)
    Lookups by ID: subjects_by_id(ids) -> {id: Subject} / experiments_by_id(ids) -> {id: Experiment}
               disk_path(resource_id, relative_path) -> Path (checked to stay inside the resource folder)
    Sharing:   share(item, project, label) / unshare(item, project) / shares_of(item) / share_in(item, project)
               label_in(item, project) / projects_of(item) / subjects_in(project) / experiments_in(project, subject_id)
    Roles:     set_role(project, login, role) / remove_role / role_of / roles_of_user(login) / project_roles(project)
    store.is_empty() -> bool                          no project stored yet

Errors: `NotFound`, `Conflict`, `Invalid` (all subclasses of `StoreError`, each with `.status`).
Field dicts are keyed by XNAT field names ("date", "time", "UID", "modality", "type",
"series_description", "quality", "frames", "scanner", "gender", ...); custom fields
(`fields/field[name=x]/field`) live under the key "fields" as a dict.
"""

from __future__ import annotations

from xnatfs.emulator.store_sharing import ROLES, Share, SharedRecords
from xnatfs.emulator.store_db import SCHEMA
from xnatfs.emulator.store_files import CHUNK, check_relative_path, copy_stream, md5_of
from xnatfs.emulator.store_rows import (SITE_ID, Conflict, Experiment, ExperimentChild, FileRow, Invalid, NotFound,
                                        Owner, Project, Reconstruction, Resource, Scan, StoreError, Subject,
                                        merge_fields, natural_key, now_string)

__all__ = ["ROLES", "Share",
           "CHUNK", "SCHEMA", "SITE_ID", "Conflict", "Experiment", "ExperimentChild", "FileRow", "Invalid",
           "NotFound", "Owner", "Project", "Reconstruction", "Resource", "Scan", "Store", "StoreError", "Subject",
           "check_relative_path", "copy_stream", "md5_of", "merge_fields", "natural_key", "now_string"]


class Store(SharedRecords):
    """The emulator's archive: SQLite + files; see the module docstring for the API."""
