"""The prearchive: sessions received but not yet archived, and what can be done with them.

Listing: ``GET /data/prearchive/projects[/<P>]?format=json`` (xnat-rest-spec §16.1); rows carry
``project, timestamp, name, folderName, subject, status, url, tag…``, where ``url`` lacks the
``/data`` prefix. The prearchive changes under our feet (the server builds and archives sessions),
so it is never served from the metadata cache.

Actions are POSTs with ``src=<session uri>`` (§16.3, §16.4): ``/data/services/archive``,
``/data/services/prearchive/move`` (``newProject``), ``…/delete``, ``…/rebuild``, all with
``async=false`` so the call returns when the server is done.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xnatfs.errors import NotFound, ServerError
from xnatfs.model.listing import Listing, ListingKind
from xnatfs.model.transfer import Progress, download_and_extract, stream_to_file
from xnatfs.rest.paths import join, with_data_prefix
from xnatfs.rest.resultset import Row, parse_resultset

if TYPE_CHECKING:
    from xnatfs.model.base import ModelContext

Resolve = Callable[[str], Any]
#: Statuses of a session still being received; left out of listings unless asked for.
RECEIVING = frozenset({"RECEIVING", "RECEIVING_INTERRUPT"})


class PrearchiveItem:
    """A row-backed object under a prearchive session (scan or resource)."""

    def __init__(self, ctx: ModelContext, uri: str, row: Row) -> None:
        self._ctx = ctx
        self.uri = uri
        self.data = dict(row)

    @property
    def id(self) -> str:
        return self.data.get("ID") or self.data.get("label", "")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"

    def download_dir(self, target: str | Path, *, progress: Progress | None = None) -> Path:
        download_and_extract(self._ctx.session, self.uri + "/files" if "/resources/" in self.uri else self.uri,
                             Path(target), progress=progress)
        return Path(target)


class PrearchiveResource(PrearchiveItem):
    @property
    def label(self) -> str:
        return self.data.get("label", "")

    @property
    def files(self) -> Listing:
        from xnatfs.model.behaviours import FILES  # the archive's file rows have the same shape

        return Listing(self._ctx, self.uri + "/files", FILES, owner=self)  # type: ignore[arg-type]

    def _files_changed(self) -> None:
        self._ctx.invalidate(exact=[self.uri + "/files"])


class PrearchiveScan(PrearchiveItem):
    @property
    def series_description(self) -> str:
        return self.data.get("series_description", "")

    @property
    def resources(self) -> Listing:
        return Listing(self._ctx, self.uri + "/resources", PREARCHIVE_RESOURCES, owner=self)  # type: ignore[arg-type]


def _make_scan(listing: Listing, row: Row) -> PrearchiveScan:
    return PrearchiveScan(listing._ctx, join(listing.path, row.get("ID", "")), row)


def _make_resource(listing: Listing, row: Row) -> PrearchiveResource:
    return PrearchiveResource(listing._ctx, join(listing.path, row.get("label") or row.get("ID", "")), row)


PREARCHIVE_SCANS = ListingKind("scans", _make_scan, secondary=("series_description",))
PREARCHIVE_RESOURCES = ListingKind("resources", _make_resource, id_of=lambda r: r.get("label") or r.get("ID", ""))


class PrearchiveSession:
    """One session in the prearchive, described by its listing row."""

    def __init__(self, ctx: ModelContext, row: Row, resolve: Resolve) -> None:
        self._ctx = ctx
        self._row = dict(row)
        self._resolve = resolve

    def __repr__(self) -> str:
        return f"<PrearchiveSession {self.project}/{self.timestamp}/{self.name} {self.status}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrearchiveSession) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    @property
    def uri(self) -> str:
        """``/data/prearchive/projects/<P>/<timestamp>/<folder>``."""
        return with_data_prefix(self._row.get("url", ""))

    project = property(lambda self: self._row.get("project", ""))
    timestamp = property(lambda self: self._row.get("timestamp", ""))
    name = property(lambda self: self._row.get("name", ""), doc="The session label.")
    label = name
    folder_name = property(lambda self: self._row.get("folderName", ""))
    subject = property(lambda self: self._row.get("subject", ""), doc="The subject label.")
    status = property(lambda self: self._row.get("status", ""))
    tag = property(lambda self: self._row.get("tag", ""), doc="The StudyInstanceUID.")
    scan_date = property(lambda self: self._row.get("scan_date", ""))
    uploaded = property(lambda self: self._row.get("uploaded", ""))

    @property
    def data(self) -> dict[str, str]:
        return dict(self._row)

    def refresh(self) -> PrearchiveSession:
        """Read the session's row again (status changes as the server builds or archives it)."""
        rows = parse_resultset(self._ctx.session.get_json(self.uri), what="prearchive session").rows
        if not rows:
            raise NotFound(f"No prearchive session at {self.uri}")
        self._row = dict(rows[0])
        return self

    @property
    def scans(self) -> Listing:
        return Listing(self._ctx, self.uri + "/scans", PREARCHIVE_SCANS, owner=self)  # type: ignore[arg-type]

    @property
    def resources(self) -> Listing:
        return Listing(self._ctx, self.uri + "/resources", PREARCHIVE_RESOURCES, owner=self)  # type: ignore[arg-type]

    def download(self, target: str | Path, *, progress: Progress | None = None) -> Path:
        """The session as a zip file at ``target``."""
        return stream_to_file(self._ctx.session, self.uri, Path(target), params=[("format", "zip")], progress=progress)

    def download_dir(self, target: str | Path, *, progress: Progress | None = None) -> Path:
        """The session's files extracted safely under ``target``."""
        download_and_extract(self._ctx.session, self.uri, Path(target), progress=progress)
        return Path(target)

    def _post(self, service: str, extra: list[tuple[str, str]]) -> str:
        resp = self._ctx.session.post(service, params=[("src", self.uri), *extra])
        self._ctx.cache.clear()  # archiving and moving change archive listings anywhere
        return resp.text

    def archive(self, *, overwrite: str | None = None, quarantine: bool | None = None,
                trigger_pipelines: bool | None = None, project: str | None = None, subject: str | None = None,
                experiment: str | None = None) -> Any:
        """Archive this session (``POST /data/services/archive``); returns the new experiment object.

        ``overwrite`` is ``none``, ``append`` or ``delete``; ``project``/``subject``/``experiment``
        relabel on the way.
        """
        extra = [("auto-archive", "false")]
        options = (("overwrite", overwrite), ("quarantine", quarantine), ("triggerPipelines", trigger_pipelines),
                   ("project", project), ("subject", subject), ("session", experiment))
        for key, value in options:
            if value is not None:
                extra.append((key, str(value).lower() if isinstance(value, bool) else value))
        text = self._post("/data/services/archive", extra)
        uri = next((line.strip() for line in text.splitlines() if line.strip().startswith("/")), "")
        if not uri:
            raise ServerError("The archive service did not answer with the new experiment's URI",
                              excerpt=text[:200])
        return self._resolve(uri)

    def move(self, project: str) -> PrearchiveSession:
        """Move this session to ``project``'s prearchive; returns it as found there."""
        self._post("/data/services/prearchive/move", [("newProject", project), ("async", "false")])
        moved = Prearchive(self._ctx, self._resolve).find(project=project, name=self.name, timestamp=self.timestamp)
        if not moved:
            raise NotFound(f"Session {self.name} did not appear in the prearchive of {project}")
        return moved[0]

    def delete(self) -> None:
        """Delete this session from the prearchive."""
        self._post("/data/services/prearchive/delete", [("async", "false")])

    def rebuild(self) -> PrearchiveSession:
        """Ask the server to rebuild the session document, then read the row again."""
        self._post("/data/services/prearchive/rebuild", [("async", "false")])
        return self.refresh()


class Prearchive:
    """``connection.prearchive``: list and find prearchive sessions."""

    def __init__(self, ctx: ModelContext, resolve: Resolve) -> None:
        self._ctx = ctx
        self._resolve = resolve

    def __repr__(self) -> str:
        return "<Prearchive>"

    def sessions(self, project: str | None = None, *, include_receiving: bool = False) -> list[PrearchiveSession]:
        """The sessions of ``project`` (all accessible projects if None), always fresh from the server."""
        path = "/data/prearchive/projects" + ("/" + join("", project).lstrip("/") if project else "")
        rows = parse_resultset(self._ctx.session.get_json(path), what="prearchive listing").rows
        return [PrearchiveSession(self._ctx, row, self._resolve) for row in rows
                if include_receiving or row.get("status") not in RECEIVING]

    def find(self, project: str | None = None, *, subject: str | None = None, name: str | None = None,
             status: str | None = None, timestamp: str | None = None) -> list[PrearchiveSession]:
        """The sessions matching every given attribute."""
        wanted = {"subject": subject, "name": name, "status": status, "timestamp": timestamp}
        return [s for s in self.sessions(project, include_receiving=True)
                if all(value is None or s.data.get(key) == value for key, value in wanted.items())]

    def get(self, uri: str) -> PrearchiveSession:
        """The session at ``uri`` (``/data/prearchive/projects/<P>/<timestamp>/<folder>``)."""
        uri = with_data_prefix(uri)
        rows = parse_resultset(self._ctx.session.get_json(uri), what="prearchive session").rows
        if not rows:
            raise NotFound(f"No prearchive session at {uri}")
        return PrearchiveSession(self._ctx, rows[0], self._resolve)


__all__ = ["Prearchive", "PrearchiveSession", "PrearchiveScan", "PrearchiveResource"]
