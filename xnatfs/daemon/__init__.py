"""The mount daemon: ``xnatfs mount`` / ``xnatfs umount`` (see :mod:`xnatfs.daemon.run`).

- :mod:`~xnatfs.daemon.options` — options and the local checks made before talking to the server;
- :mod:`~xnatfs.daemon.process` — libfuse's stderr, logging, malloc tuning;
- :mod:`~xnatfs.daemon.run` — log in, mount, run the FUSE loop; fork and report readiness; unmount.

Layer L6 with :mod:`xnatfs.fuseops`: the only modules that import mfusepy.
"""

from __future__ import annotations

from xnatfs.daemon.options import (
    FUSE_DEVICE,
    PASSWORD_ENV,
    ConfigError,
    MountError,
    MountOptions,
    check_fuse_device,
    check_mountpoint,
    check_url,
    obtain_credentials,
    parse_fuse_options,
    parse_size,
)
from xnatfs.daemon.process import setup_logging, tune_malloc
from xnatfs.daemon.run import main, mount_main, serve, umount_main, unmount

__all__ = ["main", "mount_main", "umount_main", "serve", "unmount", "MountOptions", "MountError", "ConfigError",
           "parse_size", "parse_fuse_options", "check_url", "check_fuse_device", "check_mountpoint",
           "obtain_credentials", "setup_logging", "tune_malloc", "FUSE_DEVICE", "PASSWORD_ENV"]
