"""Which BIDS name a scan gets: the project's ``bidsmap``, ReproIn series names, then a built-in table.

A BIDS dataset names each image ``sub-<label>[_ses-<label>]_<entities>_<suffix>`` in a datatype
folder (``anat``, ``func``, ``dwi``, ``fmap``). XNAT knows a scan by its series description, so the
BIDS view (:mod:`xnatfs.vfs.bids_view`) asks :func:`bids_name` for each scan, which tries in order:

1. the project's mapping (:func:`parse_bidsmap`), in the format of XNAT's own ``dcm2bids-session``
   container: a JSON list of ``{"series_description": …, "bidsname": …}``, matched without regard to
   case, ``bidsname`` being the name after ``sub-…_ses-…_`` (``T1w``, ``task-rest_bold``);
2. a ReproIn series name (``anat-T1w``, ``func-bold_task-rest_run-1``, ``dwi``, ``fmap-epi_dir-AP``),
   the convention scanners are set up with so that names carry their BIDS meaning;
3. a built-in table for common names (MPRAGE/T1 → ``anat/T1w``, T2 → ``T2w``, FLAIR, BOLD/fMRI/rest →
   ``func/bold`` with ``task-rest``, DWI/DTI → ``dwi``, field maps).

Anything else (localizers, scouts, derived series, CT, PET) is left out with a reason, which the view
lists in a dot-file. Everything here is pure (no I/O): tested in ``tests/unit/test_bidsmap.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: BIDS entities in the order the specification puts them in a file name
ENTITY_ORDER = ("task", "acq", "ce", "rec", "dir", "run", "mod", "echo", "flip", "inv", "mt", "part", "chunk")
#: suffix → datatype folder, for the suffixes this view produces
SUFFIX_DATATYPE = {
    "T1w": "anat", "T2w": "anat", "FLAIR": "anat", "PDw": "anat", "T2starw": "anat", "angio": "anat",
    "bold": "func", "sbref": "func", "cbv": "func",
    "dwi": "dwi",
    "epi": "fmap", "phasediff": "fmap", "magnitude1": "fmap", "magnitude2": "fmap", "phase1": "fmap",
    "phase2": "fmap", "fieldmap": "fmap", "magnitude": "fmap",
}
DATATYPES = frozenset(SUFFIX_DATATYPE.values())
_ENTITY = re.compile(r"^([a-zA-Z]+)-([a-zA-Z0-9]+)$")
#: series descriptions that are never images for analysis, whatever else they say
_EXCLUDED = re.compile(r"localizer|localiser|scout|survey|aahead|calibration|\bcal\b|mosaic|derived|mpr\b|"
                       r"\bmip\b|phoenix|screen ?save|report|_adc\b|\badc\b|\bfa\b|trace|colfa|tensor",
                       re.IGNORECASE)
#: (pattern, suffix, entities): the built-in table, first match wins
_BUILT_IN: tuple[tuple[re.Pattern[str], str, tuple[tuple[str, str], ...]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), suffix, entities) for pattern, suffix, entities in (
        (r"\bsbref\b", "sbref", (("task", "rest"),)),
        (r"bold|fmri|\brest|resting|\bepi.?rs|\brs[-_ ]?fmri", "bold", (("task", "rest"),)),
        (r"\bdwi\b|\bdti\b|diffusion|\bdwi[0-9_]", "dwi", ()),
        (r"field ?map|fieldmap|\bb0map\b|\bgre[-_ ]field", "phasediff", ()),
        (r"flair", "FLAIR", ()),
        (r"mprage|mp-rage|\bt1\b|\bt1w|t1[-_ ]?weighted|\bspgr\b|\bbravo\b|\btfl\b|t1[-_ ]3d|\bt1[-_ ]", "T1w", ()),
        (r"\bt2\*|t2star|\bswi\b", "T2starw", ()),
        (r"\bt2\b|\bt2w|t2[-_ ]?weighted|\btse\b|\bt2[-_ ]", "T2w", ()),
        (r"\bpd\b|\bpdw\b|proton density", "PDw", ()),
    ))


class BidsmapError(ValueError):
    """A project's bidsmap.json that is not the dcm2bids-session format (the message says why)."""


@dataclass(frozen=True)
class BidsName:
    """Where a scan goes: ``<datatype>/<…>_<entities>_<suffix>``; ``source`` says which rule chose it."""

    datatype: str
    suffix: str
    entities: tuple[tuple[str, str], ...] = ()
    source: str = "built-in"

    def with_entity(self, key: str, value: str) -> BidsName:
        kept = tuple((k, v) for k, v in self.entities if k != key)
        return BidsName(self.datatype, self.suffix, _ordered((*kept, (key, value))), self.source)

    def entity(self, key: str) -> str | None:
        return dict(self.entities).get(key)

    def stem(self, subject: str, session: str | None) -> str:
        """``sub-<subject>[_ses-<session>]_<entities>_<suffix>`` (labels already BIDS-safe)."""
        parts = [f"sub-{subject}"] + ([f"ses-{session}"] if session else [])
        parts += [f"{k}-{v}" for k, v in self.entities] + [self.suffix]
        return "_".join(parts)

    @property
    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """Identity within a session, without ``run``: scans sharing it get run numbers."""
        return self.datatype, self.suffix, tuple((k, v) for k, v in self.entities if k != "run")


@dataclass(frozen=True)
class Unmapped:
    """Why a scan has no BIDS name (listed in the view's dot-file)."""

    reason: str


@dataclass(frozen=True)
class Bidsmap:
    """A project's series description → BIDS name table (lower-cased keys)."""

    names: Mapping[str, str] = field(default_factory=dict)

    def lookup(self, description: str) -> str | None:
        return self.names.get(description.strip().lower())


def safe_label(text: str) -> str:
    """A BIDS label: only ASCII letters and digits (BIDS reserves ``_`` and ``-``); empty stays empty."""
    return re.sub(r"[^A-Za-z0-9]", "", text)


def unique_labels(labels: Sequence[str]) -> list[str]:
    """BIDS-safe labels for ``labels`` (same order), unique: where two become the same, the later ones get
    ``x2``, ``x3`` … appended (``S_1`` and ``S-1`` → ``S1`` and ``S1x2``); an empty one becomes ``x``."""
    safe = [safe_label(label) or "x" for label in labels]
    seen: dict[str, int] = {}
    out: list[str] = []
    taken = set()
    for label in safe:
        candidate = label
        count = seen.get(label, 0)
        while candidate in taken:
            count += 1
            candidate = f"{label}x{count + 1}"
        seen[label] = count
        taken.add(candidate)
        out.append(candidate)
    return out


def parse_bidsmap(data: bytes) -> Bidsmap:
    """The mapping of a ``bidsmap.json`` (dcm2bids-session format: a list of objects with
    ``series_description`` and ``bidsname``; other keys and entries without both are ignored)."""
    try:
        entries = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BidsmapError(f"bidsmap.json is not JSON: {exc}") from None
    if not isinstance(entries, list):
        raise BidsmapError("bidsmap.json must be a JSON list of {\"series_description\": …, \"bidsname\": …}")
    names: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("series_description"), str) \
                and isinstance(entry.get("bidsname"), str):
            names.setdefault(entry["series_description"].strip().lower(), entry["bidsname"].strip())
    return Bidsmap(names)


def from_bidsname(text: str, source: str) -> BidsName | Unmapped:
    """A dcm2bids-style name (``task-rest_acq-fast_bold``; optionally ``func/…``) as a :class:`BidsName`."""
    text = text.strip().removesuffix(".nii.gz").removesuffix(".nii")
    datatype = ""
    if "/" in text:
        datatype, _, text = text.rpartition("/")
    parts = [p for p in text.split("_") if p]
    if not parts:
        return Unmapped(f"{source}: empty BIDS name")
    suffix = parts[-1]
    entities = []
    for part in parts[:-1]:
        match = _ENTITY.match(part)
        if match is None:
            return Unmapped(f"{source}: {part!r} in {text!r} is not a BIDS entity (key-value)")
        key, value = match.groups()
        if key in ("sub", "ses"):
            continue
        if key not in ENTITY_ORDER:
            return Unmapped(f"{source}: unknown BIDS entity {key!r} in {text!r}")
        entities.append((key, value))
    datatype = datatype or SUFFIX_DATATYPE.get(suffix, "")
    if datatype not in DATATYPES or SUFFIX_DATATYPE.get(suffix) not in (datatype, None):
        return Unmapped(f"{source}: {text!r} has no datatype this view serves (anat, func, dwi, fmap)")
    name = BidsName(datatype, suffix, _ordered(entities), source)
    if suffix in ("bold", "sbref") and name.entity("task") is None:
        name = name.with_entity("task", "rest")
    return name


def reproin(description: str) -> BidsName | Unmapped | None:
    """A ReproIn series name (``<datatype>[-<suffix>][_<entity>-<value>…][__<comment>]``), or None
    if ``description`` is not one."""
    text = description.strip().split("__", 1)[0]
    head, _, rest = text.partition("_")
    datatype, _, suffix = head.partition("-")
    if datatype not in DATATYPES:
        return None
    suffix = suffix or {"anat": "T1w", "func": "bold", "dwi": "dwi", "fmap": "epi"}[datatype]
    name = from_bidsname(f"{datatype}/{rest + '_' if rest else ''}{suffix}", "ReproIn")
    if isinstance(name, BidsName) and name.datatype == "fmap" and name.suffix == "epi" and name.entity("dir") is None:
        return Unmapped(f"ReproIn {description!r}: an epi field map needs a dir- entity")
    return name


def built_in(description: str) -> BidsName | Unmapped:
    """The built-in table (module docstring), or why the scan is left out."""
    if not description.strip():
        return Unmapped("no series description")
    if _EXCLUDED.search(description):
        return Unmapped(f"{description!r} is a localizer, scout or derived series")
    for pattern, suffix, entities in _BUILT_IN:
        if pattern.search(description):
            return BidsName(SUFFIX_DATATYPE[suffix], suffix, _ordered(entities))
    return Unmapped(f"{description!r} matches no BIDS name (add it to the project's BIDS/bidsmap.json)")


def bids_name(description: str, modality: str = "MR", bidsmap: Bidsmap | None = None) -> BidsName | Unmapped:
    """The BIDS name of a scan with this series description (see the module docstring for the order)."""
    if bidsmap is not None:
        mapped = bidsmap.lookup(description)
        if mapped is not None:
            return from_bidsname(mapped, "bidsmap.json")
    if modality and modality.upper() != "MR":
        return Unmapped(f"modality {modality} (this view serves MR)")
    found = reproin(description)
    if found is not None:
        return found
    return built_in(description)


def number_runs(names: Sequence[BidsName | Unmapped]) -> list[BidsName | Unmapped]:
    """Give ``run-<n>`` (1, 2, … in the given order) to scans of one session that share a name without
    a run of their own, so every file name is unique; the others are unchanged."""
    counts: dict[tuple, int] = {}
    for name in names:
        if isinstance(name, BidsName) and name.entity("run") is None:
            counts[name.key] = counts.get(name.key, 0) + 1
    given: dict[tuple, int] = {}
    out: list[BidsName | Unmapped] = []
    for name in names:
        if isinstance(name, BidsName) and name.entity("run") is None and counts[name.key] > 1:
            given[name.key] = given.get(name.key, 0) + 1
            name = name.with_entity("run", str(given[name.key]))
        out.append(name)
    return out


def _ordered(entities: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(entities, key=lambda kv: ENTITY_ORDER.index(kv[0]) if kv[0] in ENTITY_ORDER else 99))


__all__ = ["BidsName", "Unmapped", "Bidsmap", "BidsmapError", "bids_name", "parse_bidsmap", "from_bidsname",
           "reproin", "built_in", "number_runs", "safe_label", "unique_labels", "SUFFIX_DATATYPE", "DATATYPES",
           "ENTITY_ORDER"]
