"""What a resource/file URL names: its owner objects, the resources selected, and their URIs.

XNAT's file routes (``XNATTemplate`` / ``XNATCatalogTemplate``, spec §12–§13) resolve a URL into a
project, a subject, sessions, scans, reconstructions or assessors, and then into catalogs
(resources). This module does the same over the Store so that the resource, listing, upload and
zip handlers agree on:

* which owners a URL names — a scan segment may be an ID, a type, a comma list, ``*``/``ALL`` or
  ``NULL`` (untyped), with ``[SLASH]``/``[COMMA]`` escapes (spec §1); writes need exactly one owner;
* which resources a ``{R}`` segment selects — numeric ``xnat_abstractresource_id`` or label, comma
  lists allowed; without one, the owners' resources (an experiment's own only, unless ``all=true``);
* the URIs XNAT prints: ``base_uri()`` for a single catalog (``getBaseURI``: accession IDs, and the
  ``/projects/P/subjects/S`` prefix only when both were in the URL), ``resource_base()`` for
  listings over several catalogs (the SQL ``resource_path`` column, prefixed with ``/data``);
* how zip entries are named (``getSessionMaps`` + ``RestFileUtils.buildRelativePath``).

Assessor and reconstruction resources are ``in`` or ``out`` (``XNATTemplate``: a URL without the
segment means ``out``), two separate lists; a session's ``files?all=true`` and ``resources?all=true``
take the ``out`` ones only (XNAT's union query joins ``img_assessor_out_resource`` and
``recon_out_resource``). With the ``merged_in_out`` switch both sides are one list, as the emulator
had them before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from xnatfs.emulator import resolve
from xnatfs.emulator.responses import HTTPError
from xnatfs.emulator.store import Experiment, Owner, Project, Reconstruction, Resource, Scan, Store, Subject

_NON_WORD = re.compile(r"\W")


def truthy(value: str | None) -> bool:
    """XNAT's ``isQueryVariableTrue``: "true" or "1" (case-insensitive)."""
    return (value or "").strip().lower() in ("true", "1")


@dataclass
class Scope:
    """The objects a resource/file URL names (see module docstring)."""

    kind: str                         # project | subject | experiment | assessor | scan | reconstruction
    owners: list[Owner]
    project: Project | None = None    # named in the URL
    subject: Subject | None = None    # named in the URL
    session: Experiment | None = None  # the assessed session of scans, reconstructions and assessors
    io: str | None = None
    scans_in_url: list[Scan] = field(default_factory=list)
    merged: bool = False  # the ``merged_in_out`` switch: one resource list for ``in`` and ``out``

    @property
    def side(self) -> str | None:
        """The resource side this URL selects (None: every resource of the owners)."""
        if self.kind not in ("assessor", "reconstruction") or self.merged:
            return None
        return self.io or "out"

    @property
    def create_side(self) -> str | None:
        """The side a resource created through this URL goes to (merged: always ``out``)."""
        if self.kind not in ("assessor", "reconstruction"):
            return None
        return "out" if self.merged else (self.io or "out")

    @property
    def owner(self) -> Owner:
        """The single owner a write needs (404 as XNAT words it when the URL names several)."""
        if len(self.owners) != 1:
            raise HTTPError(404, f"Unable to identify {self.kind}")
        return self.owners[0]

    # ---- URIs -----------------------------------------------------------------------------------
    def base_uri(self) -> str:
        """``XNATCatalogTemplate.getBaseURI``: the owner part of a single catalog's file URIs."""
        parts = ["/data"]
        if self.project is not None and self.subject is not None:
            parts.append(f"/projects/{self.project.id}/subjects/{self.subject.id}")
        if self.kind in ("scan", "reconstruction", "assessor"):
            assert self.session is not None
            ids = ",".join(o.id for o in self.owners)
            segment = {"scan": "scans", "reconstruction": "reconstructions", "assessor": "assessors"}[self.kind]
            parts.append(f"/experiments/{self.session.id}/{segment}/{ids}")
            if self.kind != "scan":
                parts.append(f"/{self.io or 'out'}")
        elif self.kind == "experiment":
            parts.append("/experiments/" + ",".join(o.id for o in self.owners))
        elif self.kind == "subject" and self.project is None:
            # XNAT prints a bare "/data/resources/..." here; name the subject so the URI resolves.
            parts.append(f"/subjects/{self.owners[0].id}")
        elif self.kind == "project":
            parts.append(f"/projects/{self.owners[0].id}")
        return "".join(parts)

    def archive_root(self) -> tuple[str, str]:
        """``getSessionMaps``: (token cut from URIs, name replacing it) for zip entry paths."""
        if self.session is not None:
            return self.session.id, self.session.label
        owner = self.owners[0]
        if isinstance(owner, Experiment):
            return owner.id, owner.label
        if isinstance(owner, Subject):
            return owner.id, owner.label
        return owner.id, owner.id  # project: its ID

    def download_name(self) -> str:
        """The security object's archive directory name: session label, subject label or project ID."""
        return self.archive_root()[1]

    def scan_renames(self) -> dict[str, str]:
        """``RestFileUtils.getReMaps``: scans named in the URL become ``<id>-<type>`` in zip paths."""
        return {s.id: f"{s.id}-{_NON_WORD.sub('_', s.type)}" for s in self.scans_in_url if s.type}

    # ---- resources ------------------------------------------------------------------------------
    def all_resources(self, store: Store, *, include_children: bool = False) -> list[Resource]:
        """The owners' resources; ``include_children`` (``all=true``) adds an experiment's scans,
        reconstructions and assessors, as XNAT's union query does."""
        found: list[Resource] = []
        for owner in self.owners:
            if include_children and self.kind == "experiment":
                side = None if self.merged else "out"
                found.extend(r for r in store.list_resources_of_experiment(
                    owner.id, ("experiment", "scan", "reconstruction")) if side is None or r.io in ("", side))
                for assessor in store.list_experiments(session_id=owner.id):
                    found.extend(store.list_resources(assessor, side))
            else:
                found.extend(store.list_resources(owner, self.side))
        return found

    def select_resources(self, store: Store, spec: str) -> list[Resource]:
        """Resources named by a ``{R}`` segment (label or numeric ID, comma list), in URL order."""
        wanted = [s for s in (p.strip() for p in spec.split(",")) if s]
        found: list[Resource] = []
        for name in wanted:
            for owner in self.owners:
                resource = store.find_resource(owner, name, self.side)
                if resource is not None and all(r.id != resource.id for r in found):
                    found.append(resource)
        return found


def resolve_scope(store: Store, values: dict[str, Any], merged: bool = False) -> Scope:
    """Resolve a file route's URL variables; 404s use the archive's wording (``resolve``).
    ``merged``: the ``merged_in_out`` switch (one list for ``in`` and ``out`` resources)."""
    scope = _resolve_scope(store, values)
    scope.merged = merged
    return scope


def _resolve_scope(store: Store, values: dict[str, Any]) -> Scope:
    project = resolve.project(store, values["project"]) if "project" in values else None
    if "experiment" not in values:
        if "subject" in values:
            subject = resolve.subject_in(store, values["subject"], project)
            return Scope("subject", [subject], project=project, subject=subject)
        assert project is not None
        return Scope("project", [project], project=project)
    subject = resolve.subject_in(store, values["subject"], project) if "subject" in values else None
    session = resolve.experiment_in(store, values["experiment"], project, subject if project is not None else None)
    common = dict(project=project, subject=subject)
    if "scan" in values:
        scans = select_scans(store, session, values["scan"])
        return Scope("scan", list(scans), session=session, scans_in_url=list(scans), **common)
    if "recon" in values:
        recons = _select_reconstructions(store, session, values["recon"])
        return Scope("reconstruction", list(recons), session=session, io=values.get("io"), **common)
    if "assessor" in values:
        assessor = resolve.assessor(store, session, values["assessor"])
        return Scope("assessor", [assessor], session=session, io=values.get("io"), **common)
    return Scope("experiment", [session], **common)


def select_scans(store: Store, session: Experiment, spec: str) -> list[Scan]:
    """Scans matching an ID, a type, ``*``/``ALL``, ``NULL`` or a comma list of those (spec §1)."""
    exact = store.get_scan(session.id, spec.replace("[SLASH]", "/"))
    if exact is not None:
        return [exact]
    scans = store.list_scans(session.id)
    items = [item.replace("[SLASH]", "/").replace("[COMMA]", ",") for item in spec.split(",")]
    chosen = []
    for scan in scans:
        for item in items:
            if item in ("*", "ALL") or scan.id == item or scan.type == item or (item == "NULL" and not scan.type):
                chosen.append(scan)
                break
    if not chosen:
        raise HTTPError(404, "Unable to find the specified scan.")
    return chosen


def _select_reconstructions(store: Store, session: Experiment, spec: str) -> list[Reconstruction]:
    recons = store.list_reconstructions(session.id)
    items = spec.split(",")
    chosen = [r for r in recons
              if any(i in ("*", "ALL") or r.id == i or r.fields.get("type") == i for i in items)]
    if not chosen:
        raise HTTPError(404, "Unable to find the specified reconstruction.")
    return chosen


def owner_of(store: Store, resource: Resource) -> Owner | None:
    """The object a resource belongs to (None if it vanished meanwhile)."""
    kind, ref = resource.owner_kind, resource.owner_ref
    if kind == "project":
        return store.get_project(ref)
    if kind == "subject":
        return store.get_subject(ref)
    if kind == "experiment":
        return store.get_experiment(ref)
    if kind == "scan":
        return store.get_scan_by_pk(int(ref))
    if kind == "reconstruction" and resource.experiment_id:
        return next((r for r in store.list_reconstructions(resource.experiment_id) if str(r.pk) == ref), None)
    return None


def resource_base(store: Store, resource: Resource) -> str:
    """The SQL ``resource_path`` of a catalog, with ``/data``: URIs in multi-catalog listings."""
    owner = owner_of(store, resource)
    rid = resource.id
    if isinstance(owner, Project):
        return f"/data/projects/{owner.id}/resources/{rid}"
    if isinstance(owner, Subject):
        return f"/data/projects/{owner.project}/subjects/{owner.id}/resources/{rid}"
    if isinstance(owner, Experiment):
        if owner.session_id is not None:
            return f"/data/experiments/{owner.session_id}/assessors/{owner.id}/{resource.io or 'out'}/resources/{rid}"
        return f"/data/experiments/{owner.id}/resources/{rid}"
    if isinstance(owner, Scan):
        return f"/data/experiments/{owner.experiment_id}/scans/{owner.id}/resources/{rid}"
    if isinstance(owner, Reconstruction):
        side = resource.io or "out"
        return f"/data/experiments/{owner.experiment_id}/reconstructions/{owner.id}/{side}/resources/{rid}"
    return f"/data/resources/{rid}"


def resource_category(store: Store, resource: Resource, *, widened: bool = False) -> tuple[str, str, str]:
    """(category, cat_id, cat_desc) of a resource row (``XNATTemplate.loadCatalogs``).

    Project, subject and experiment resources say ``' '`` for cat_desc (a space, from the SQL);
    an experiment's own resources carry its ID as cat_id unless listed with ``all=true``.
    """
    owner = owner_of(store, resource)
    if isinstance(owner, Scan):
        return "scans", owner.id, owner.type
    if isinstance(owner, Reconstruction):
        return "reconstructions", owner.id, str(owner.fields.get("type", ""))
    if isinstance(owner, Experiment):
        if owner.session_id is not None:
            return "assessors", owner.id, owner.xsi_type
        return ("resources", "", "") if widened else ("resources", owner.id, " ")
    return "resources", "", " "
