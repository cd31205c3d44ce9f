"""The derived views' switches and their assembly: ``scans/<ID>/nifti/`` and ``bids/<project>/``.

:class:`ViewSettings` is what ``xnatfs mount`` decides (``--no-views``, ``--no-nifti``, ``--no-bids``,
``--cache-dir``); :func:`make_views` builds the one converter both views share, so a scan seen through
``nifti/`` and through ``bids/`` is converted once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xnatfs.model.records import FileInfo
from xnatfs.vfs.bids_view import BidsView
from xnatfs.vfs.conversion import Converter, ConverterSettings, default_root
from xnatfs.vfs.nifti_view import NiftiView, SeriesSource
from xnatfs.vfs.tree import VirtualTree


@dataclass(frozen=True)
class ViewSettings:
    """Which views are shown, where conversions are kept (None: ``default_root(cache_dir)``), how long a
    conversion may take and how many run at once, and the cap of the conversions kept on disk."""

    nifti: bool = True
    bids: bool = True
    root: Path | None = None
    cache_dir: Path | None = None
    timeout: float = 300.0
    max_parallel: int = 2
    max_bytes: int = 4 * 1024 ** 3

    @property
    def any(self) -> bool:
        return self.nifti or self.bids


NO_VIEWS = ViewSettings(nifti=False, bids=False)


@dataclass(frozen=True)
class Views:
    """The views of one mount (each None when turned off) and their shared converter."""

    converter: Converter | None = None
    nifti: NiftiView | None = None
    bids: BidsView | None = None


def make_views(tree: VirtualTree, read_whole: Callable[[FileInfo], bytes], settings: ViewSettings, *,
               ttl: float) -> Views:
    """The views ``settings`` turn on (no I/O: folders are made at the first conversion)."""
    if not settings.any:
        return Views()
    converter = Converter(read_whole, ConverterSettings(
        root=settings.root or default_root(settings.cache_dir), timeout=settings.timeout,
        max_parallel=settings.max_parallel, max_bytes=settings.max_bytes))
    series = SeriesSource(tree, converter)
    return Views(converter, NiftiView(tree, series) if settings.nifti else None,
                 BidsView(series, ttl=ttl, mount_time=tree.mount_time) if settings.bids else None)


__all__ = ["ViewSettings", "Views", "make_views", "NO_VIEWS"]
