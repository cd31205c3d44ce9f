"""Run the emulator: a threaded werkzeug HTTP server over a Store, in-process or from the command line.

``EmulatorServer`` is what tests, benchmarks and ``xnatfs demo`` start: ``start()`` returns once the
socket accepts connections (port 0 picks a free port, ``.url`` names it), ``stop()`` shuts it down and
closes the store. Restarting on the same ``data_dir`` keeps everything (SQLite + files on disk).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from xnatfs.emulator.app import EmulatorApp, EmulatorConfig
from xnatfs.emulator.faults import Faults, FaultSettings
from xnatfs.emulator.store import Store

log = logging.getLogger(__name__)


class QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without a log line per request (the request counter replaces it). A request
    line that does not parse gets the stdlib's 400 and one warning line (it has no method or path yet,
    which the stdlib's logging of it would need)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", getattr(self, "command", None) or "-", getattr(self, "path", None) or "-", code)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.warning("Refused a request from %s: " + format, self.client_address[0], *args)


class EmulatorServer:
    """An XNAT emulator listening on ``host:port`` in a background thread."""

    def __init__(self, data_dir: str | Path | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 sample: bool = False, users: dict[str, str] | None = None,
                 faults: FaultSettings | None = None, allow_guest: bool = False, session_timeout: float = 900.0,
                 legacy_paths: bool = False, http_range: bool = False, restlet_401: bool = False,
                 merged_in_out: bool = False) -> None:
        """``allow_guest``: requests without credentials (or with a dead session) are served as the
        guest user (XNAT's ``requireLogin=false``); ``session_timeout``: idle seconds before a
        JSESSIONID dies (0: never). The last four are the compatibility switches of
        :class:`~xnatfs.emulator.app.EmulatorConfig` (False = XNAT's behaviour, except
        ``merged_in_out`` where True is the old one)."""
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="xnat-emulator-")
            data_dir = self._tmp.name
        self.data_dir = Path(data_dir)
        self.host = host
        self.requested_port = port
        self.store = Store(self.data_dir)
        if sample:
            from xnatfs.emulator.sample import populate

            populate(self.store)
        config = EmulatorConfig(users=dict(users or {"admin": "admin"}), allow_guest=allow_guest,
                                session_timeout=session_timeout, legacy_paths=legacy_paths, http_range=http_range,
                                restlet_401=restlet_401, merged_in_out=merged_in_out)
        self.faults = Faults(faults)
        self.app = EmulatorApp(self.store, config, self.faults)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "EmulatorServer":
        """Bind and serve in a daemon thread; returns once connections are accepted."""
        self._server = make_server(self.host, self.requested_port, self.app, threaded=True,
                                   request_handler=QuietRequestHandler)
        self._server.daemon_threads = True
        self.requested_port = self.port  # a restart reuses the same port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="xnat-emulator", daemon=True)
        self._thread.start()
        return self

    def set_faults(self, **changes: Any) -> FaultSettings:
        return self.faults.update(**changes)

    def stop(self, close_store: bool = True) -> None:
        """Stop accepting connections; with ``close_store`` the archive is closed too."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if close_store:
            self.store.close()
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
