"""``…/scans/<ID>/nifti/``: what dcm2niix makes of a scan's DICOM resource, converted on demand.

A scan with a DICOM resource (label or format ``DICOM``) gets a ``nifti`` folder next to its
``resources``; deciding that costs nothing, because the scan's record (from the session's document the
``scans/`` listing already loaded) lists its resources. The folder holds the image (``.nii.gz``), its
BIDS sidecar (``.json``), ``.bval``/``.bvec`` for diffusion, and ``conversion.log`` (dcm2niix's output).

The series is converted at the first listing of ``nifti/`` or lookup of a name in it, so every size the
kernel is given is the final one (:class:`~xnatfs.vfs.conversion.Converter`: once per series content,
shared by concurrent callers, kept on disk). A failed conversion lists ``conversion.log`` (readable) and
the image it should have made, with size 0, whose opening fails with EIO
(:class:`~xnatfs.errors.ConversionFailed`); the mount goes on serving everything else.

Read-only: :class:`~xnatfs.vfs.areas.ProjectsArea` refuses changes below ``nifti/``.
"""

from __future__ import annotations

from collections.abc import Sequence

from xnatfs.errors import NotADirectory, NotFound
from xnatfs.model.records import SCAN, FileInfo, ResourceInfo, XObject
from xnatfs.vfs.conversion import LOG_NAME, Converted, Converter, safe_base
from xnatfs.vfs.naming import join_path, split_path
from xnatfs.vfs.nodes import FILE_MODE, Node, NodeKind, Stat, dir_stat, file_stat
from xnatfs.vfs.tree import VirtualTree

NIFTI = "nifti"
#: parts of a path to a scan: projects/P/subjects/S/experiments/E/scans/ID
_SCAN_DEPTH = 8


def dicom_resource(scan: XObject) -> ResourceInfo | None:
    """The scan's DICOM resource (label, else format ``DICOM``), from its record: no request."""
    resources = [r for r in scan.resources or () if r.role != "in"]
    for resource in resources:
        if resource.label.upper() == "DICOM":
            return resource
    for resource in resources:
        if resource.format.upper() == "DICOM":
            return resource
    return None


def is_scan_path(parts: Sequence[str]) -> bool:
    """True for the parts of ``projects/<P>/subjects/<S>/experiments/<E>/scans/<ID>`` (and only there:
    a resource's sub-folder may be called ``scans`` too)."""
    return (len(parts) == _SCAN_DEPTH and parts[0] == "projects" and parts[2] == "subjects"
            and parts[4] == "experiments" and parts[6] == "scans")


def is_nifti_path(path: str) -> bool:
    """True for ``…/scans/<ID>/nifti`` and the names in it."""
    parts = split_path(path)
    return (len(parts) in (_SCAN_DEPTH + 1, _SCAN_DEPTH + 2) and is_scan_path(parts[:_SCAN_DEPTH])
            and parts[_SCAN_DEPTH] == NIFTI)


def series_base(scan: XObject) -> str:
    """The output base name of a scan's images: its ID and series description (``2_T1w_MPRAGE``)."""
    description = str(scan.fields.get("series_description") or scan.fields.get("type") or "")
    return safe_base(f"{scan.id}_{description}" if description else scan.id)


class SeriesSource:
    """A scan's DICOM files and their conversion: what the NIfTI and BIDS views share."""

    def __init__(self, tree: VirtualTree, converter: Converter) -> None:
        self.tree = tree
        self.converter = converter

    def files(self, resource: ResourceInfo) -> Sequence[FileInfo]:
        """The resource's files (the session's one cached file listing)."""
        return [f for f in self.tree.source.files(resource.scope_uri) if f.resource_id == resource.id]

    def convert(self, scan: XObject) -> Converted | None:
        """The scan's conversion, or None when it has no DICOM resource."""
        resource = dicom_resource(scan)
        if resource is None:
            return None
        return self.converter.convert(self.files(resource), series_base(scan))


def derived_nodes(folder: str, converted: Converted, mtime: float, base: str) -> dict[str, Node]:
    """The entries of a ``nifti/`` folder for a conversion (see module docstring)."""
    entries: dict[str, Node] = {}
    if converted.ok:
        for name, size in converted.files:
            entries[name] = Node(NodeKind.DERIVED, f"{folder}/{name}", file_stat(size, mtime),
                                 local=converted.path(name))
    else:
        entries[f"{base}.nii.gz"] = Node(NodeKind.DERIVED, f"{folder}/{base}.nii.gz", file_stat(0, mtime), local=None)
    entries[LOG_NAME] = Node(NodeKind.TEXT, f"{folder}/{LOG_NAME}", Stat(FILE_MODE, len(converted.log), mtime),
                             data=converted.log)
    return entries


class NiftiView:
    """The ``nifti/`` folders of scans (see module docstring)."""

    def __init__(self, tree: VirtualTree, series: SeriesSource) -> None:
        self.tree = tree
        self.series = series

    def entry(self, scan_node: Node) -> Node | None:
        """The ``nifti`` entry of a scan folder, or None if the scan has no DICOM resource."""
        scan = scan_node.obj
        if scan_node.kind is not NodeKind.OBJECT or scan is None or scan.kind != SCAN or dicom_resource(scan) is None:
            return None
        return Node(NodeKind.COLLECTION, f"{scan_node.path}/{NIFTI}", dir_stat(self._mtime(scan)), obj=scan,
                    collection=NIFTI)

    def lookup(self, path: str) -> Node:
        parts = split_path(path)
        folder = self._folder(parts)
        if len(parts) == _SCAN_DEPTH + 1:
            return folder
        if parts[-1].startswith("."):  # a desktop's probe (.DS_Store, .hidden…): dcm2niix makes no dot-file
            raise NotFound(f"No such entry: {path}")
        found = self._entries(folder).get(parts[-1])
        if found is None:
            raise NotFound(f"No such entry: {path}")
        return found

    def listdir(self, path: str) -> list[Node]:
        parts = split_path(path)
        if len(parts) != _SCAN_DEPTH + 1:
            self.lookup(path)
            raise NotADirectory(path)
        return list(self._entries(self._folder(parts)).values())

    def _folder(self, parts: list[str]) -> Node:
        scan_node = self.tree.lookup(join_path(parts[:_SCAN_DEPTH]))
        folder = self.entry(scan_node)
        if folder is None:
            raise NotFound(f"No such entry (the scan has no DICOM resource): {join_path(parts[:_SCAN_DEPTH + 1])}")
        return folder

    def _entries(self, folder: Node) -> dict[str, Node]:
        assert folder.obj is not None
        converted = self.series.convert(folder.obj)
        assert converted is not None
        return derived_nodes(folder.path, converted, folder.stat.mtime, series_base(folder.obj))

    def _mtime(self, obj: XObject) -> float:
        return obj.mtime if obj.mtime is not None else self.tree.mount_time


__all__ = ["NiftiView", "SeriesSource", "dicom_resource", "is_nifti_path", "is_scan_path", "series_base", "derived_nodes", "NIFTI"]
