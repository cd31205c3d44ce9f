"""The archive's REST routes (spec §8–§11): projects, subjects, experiments, scans, reconstructions and
image assessors, each under ``/data``, ``/REST`` and their ``/archive`` twins.

Each family lives in its own module (``archive_projects``, ``archive_subjects``,
``archive_experiments``, ``archive_scans``; project settings by path in ``archive_project_settings``,
sharing in ``archive_sharing``; a project's users are ``archive_project_users``);
field names, XML bodies and item rendering are shared through ``archive_fields``, ``archive_xmlbody``,
``archive_render`` and ``xnatfs.emulator.items``.
Resources and files are ``handlers/files.py``.
"""

from __future__ import annotations

from werkzeug.routing import Rule

from xnatfs.emulator.handlers import (archive_experiments, archive_project_settings, archive_projects, archive_scans,
                                     archive_sharing, archive_subjects)


def routes() -> list[Rule]:
    rules: list[Rule] = []
    for module in (archive_projects, archive_project_settings, archive_subjects, archive_experiments, archive_scans,
                   archive_sharing):
        rules.extend(module.routes())
    return rules
