"""Bulk transfer: ``download`` a tree of the mount's layout to local disk, ``upload`` a folder into a
resource; parallel, resumable, md5-checked. Built on the filesystem core (:mod:`xnatfs.vfs`: the
mount's names and walk) and the object model (streams, uploads); the commands are in
:mod:`xnatfs.transfer_commands`. See docs/transfer.md.
"""

from xnatfs.transfer.common import DEFAULT_JOBS, MAX_JOBS, QuietReporter, Reporter, Summary, TransferOptions
from xnatfs.transfer.download import download
from xnatfs.transfer.upload import upload

__all__ = ["download", "upload", "TransferOptions", "Summary", "Reporter", "QuietReporter", "DEFAULT_JOBS",
           "MAX_JOBS"]
