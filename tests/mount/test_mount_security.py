"""Security of the mount: the password never shows, insecure netrc files are refused, the mount is private,
TLS is verified, and a login page served instead of a file is an error, not the file.

A small front server (:class:`frontkit.Front`) sits between the mount and the emulator where a test needs one:
it terminates TLS with a self-signed certificate, or answers some requests itself (file downloads with
an HTML login page, as a single sign-on proxy in front of XNAT does; an object's XML with a hostile
document), and forwards everything else. It records every
request, so a test can assert that nothing was sent over an unverified connection.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from frontkit import Front
from mounting import ADMIN, MOUNT_DEADLINE, MountFactory, daemon_process, require_tools, unmount, xnatfs_command
from xnatfs.emulator.sample import populate
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.mount

PASSWORD = "Quokka-7c1d-Secret!"  # noqa: S105 - a test password, distinctive so any leak is found
NOBODY = 65534
LOGIN_PAGE = (b"<!DOCTYPE html><html><head><title>Single sign-on</title></head><body><form method=\"post\">"
              b"<input name=\"username\"/><input name=\"password\" type=\"password\"/></form></body></html>")
SESSION_FILE = ("projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR_1/scans/2/resources/DICOM/"
                "2.MR.0001.dcm")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (``openssl req -x509``) and its key."""
    require_tools("openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def secret_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """A sample emulator whose admin has :data:`PASSWORD`."""
    server = EmulatorServer(tmp_path_factory.mktemp("xnat-secret"), users={"admin": PASSWORD})
    populate(server.store)
    server.start()
    yield server
    server.stop()


def mount_command(url: str, mountpoint: Path, *options: str, password: str | None = PASSWORD,
                  env_extra: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("XNATFS_PASSWORD", "NETRC")}
    if password is not None:
        env["XNATFS_PASSWORD"] = password
    env.update(env_extra or {})
    return xnatfs_command("mount", url, str(mountpoint), *options), env


def run_mount(url: str, mountpoint: Path, *options: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    command, env = mount_command(url, mountpoint, *options, **kw)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=MOUNT_DEADLINE,
                          stdin=subprocess.DEVNULL)


def mount_options(mountpoint: Path) -> list[str]:
    """The options of ``mountpoint``'s line in /proc/mounts."""
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(mountpoint):
            return fields[3].split(",")
    raise AssertionError(f"{mountpoint} is not in /proc/mounts")


# -- the password ----------------------------------------------------------------------------------------

def forms_of(password: str) -> list[str]:
    """The password and every form it could leak in (the base64 of a Basic header)."""
    return [password, base64.b64encode(f"admin:{password}".encode()).decode()]


def test_the_password_never_shows_in_ps_the_debug_log_documents_or_errors(
        secret_emulator: EmulatorServer, tmp_path: Path) -> None:
    require_tools("ps", "ls", "cat", "find")
    mountpoint, log = tmp_path / "mnt", tmp_path / "mount.log"
    mountpoint.mkdir()
    secret_emulator.set_faults(latency_ms=300)  # the command stays up long enough to be seen in ps
    command, env = mount_command(secret_emulator.url, mountpoint, "--user", "admin", "-v", "--log-file", str(log),
                                 "--timeout", "5")
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL)
    try:
        command_line = b""
        deadline = time.monotonic() + 10
        while str(mountpoint).encode() not in command_line and time.monotonic() < deadline:
            time.sleep(0.02)  # until the child has exec'd (before, it shows pytest's own command line)
            command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        listing = subprocess.run(["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True, timeout=30).stdout
        out, err = process.communicate(timeout=MOUNT_DEADLINE)
        assert process.returncode == 0, err
        secret_emulator.set_faults(latency_ms=0)
        assert b"mount" in command_line and str(mountpoint).encode() in command_line
        assert f"{process.pid} " in listing
        daemon = daemon_process(mountpoint)
        daemon_line = " ".join(daemon.cmdline())
        listing += subprocess.run(["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True,
                                  timeout=30).stdout
        # work that logs: a server error, listings, reads, an expired session (Basic re-authenticates), every
        # xnat.json/xnat.xml
        secret_emulator.set_faults(fail_rate=1.0, fail_status=500)
        failed = subprocess.run(["ls", str(mountpoint / "projects/STUDY2/subjects")], capture_output=True, timeout=60)
        secret_emulator.set_faults(fail_rate=0.0)
        assert failed.returncode != 0
        subprocess.run(["ls", "-R", str(mountpoint / "projects/DEMO")], capture_output=True, timeout=60, check=True)
        subprocess.run(["cat", str(mountpoint / SESSION_FILE)], capture_output=True, timeout=60, check=True)
        requests.post(f"{secret_emulator.url}/emulator/sessions/expire", auth=("admin", PASSWORD),
                      timeout=10).raise_for_status()
        documents = subprocess.run(["find", str(mountpoint / "projects"), "-name", "xnat.*", "-exec", "cat", "{}", "+"],
                                   capture_output=True, timeout=120, check=True).stdout
    finally:
        if process.poll() is None:
            process.kill()
        unmount(mountpoint)
    # a refused login: the wrong password is not repeated either
    wrong = "Wrong-9d3e-Guess?"  # noqa: S105
    refused = run_mount(secret_emulator.url, tmp_path / "mnt", "--user", "admin", "--log-file",
                        str(tmp_path / "refused.log"), "-v", password=wrong)
    assert refused.returncode == 1 and "the server refused the password of user 'admin'" in refused.stderr
    log_text = log.read_text() + (tmp_path / "refused.log").read_text()
    assert "DEBUG" in log_text and "HTTP 500" in log_text
    assert len(documents) > 1000 and b"<?xml" in documents
    for leak in forms_of(PASSWORD) + forms_of(wrong):
        assert leak.encode() not in command_line
        assert leak not in daemon_line and leak not in listing
        assert leak not in out + err + refused.stdout + refused.stderr
        assert leak not in log_text
        assert leak.encode() not in documents


# -- netrc -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["--netrc", "NETRC", "HOME"])
def test_a_netrc_others_can_read_is_refused_before_mounting(how: str, fresh_emulator: EmulatorServer,
                                                          tmp_path: Path, mount_factory: MountFactory) -> None:
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text("machine 127.0.0.1 login admin password admin\n")
    netrc.chmod(0o644)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    options = ["--netrc", str(netrc)] if how == "--netrc" else []
    env_extra = {"NETRC": str(netrc)} if how == "NETRC" else {"HOME": str(home)}
    requests.delete(f"{fresh_emulator.url}/emulator/requests", auth=ADMIN, timeout=10).raise_for_status()
    result = run_mount(fresh_emulator.url, mountpoint, *options, password=None, env_extra=env_extra)
    assert result.returncode == 2, result.stderr
    assert str(netrc) in result.stderr and f"chmod 600 {netrc}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.ismount(mountpoint)
    counts = requests.get(f"{fresh_emulator.url}/emulator/requests", auth=ADMIN, timeout=10).json()
    assert counts["total"] == 0  # refused before any request
    netrc.chmod(0o600)  # the same file, private: it mounts
    result = run_mount(fresh_emulator.url, mountpoint, *options, password=None, env_extra=env_extra)
    try:
        assert result.returncode == 0, result.stderr
        assert os.listdir(mountpoint / "projects") == []
    finally:
        unmount(mountpoint)


# -- private by default ----------------------------------------------------------------------------------

@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user can enter (pytest's tmp_path is private to root, which would hide the mount)."""
    folder = Path(tempfile.mkdtemp(prefix="xnatfs-private-"))
    folder.chmod(0o755)
    yield folder
    for child in folder.iterdir():
        unmount(child)
    shutil.rmtree(folder, ignore_errors=True)


def as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command],
                          capture_output=True, text=True, errors="replace", timeout=30)


def test_the_mount_is_private_unless_allow_other_is_asked_for(emulator: EmulatorServer, open_folder: Path) -> None:
    require_tools("setpriv", "ls", "cat")
    assert os.geteuid() == 0, "setpriv needs root to switch to nobody"
    private, shared = open_folder / "private", open_folder / "shared"
    private.mkdir()
    shared.mkdir()
    assert run_mount(emulator.url, private, "--user", "admin", password="admin").returncode == 0
    assert run_mount(emulator.url, shared, "--user", "admin", "-o", "allow_other", password="admin").returncode == 0
    assert "allow_other" not in mount_options(private)
    assert "allow_other" in mount_options(shared)
    assert "DEMO" in os.listdir(private / "projects")  # its owner can read it
    refused = as_nobody("ls", str(private / "projects"))
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    refused = as_nobody("cat", str(private / SESSION_FILE))
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    allowed = as_nobody("ls", str(shared / "projects"))
    assert allowed.returncode == 0 and "DEMO" in allowed.stdout.split()
    read = as_nobody("cat", str(shared / SESSION_FILE))
    assert read.returncode == 0 and len(read.stdout) > 0


# -- TLS -------------------------------------------------------------------------------------------------

def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def test_tls_is_verified_by_default_and_nothing_is_sent_unverified(
        emulator: EmulatorServer, certificate: tuple[Path, Path], tmp_path: Path) -> None:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    with Front(emulator.url, tls=server_context(certificate)) as front:
        result = run_mount(front.url, mountpoint, "--user", "admin", "--timeout", "5", password="admin")
        assert result.returncode == 1
        assert "certificate" in result.stderr.lower() and "--ca-bundle" in result.stderr
        assert not os.path.ismount(mountpoint)
        assert front.received == [] and front.handshakes_failed >= 1  # no request went over the refused link
    both = run_mount(emulator.url, mountpoint, "--user", "admin", "--insecure", "--ca-bundle", str(certificate[0]),
                     password="admin")
    assert both.returncode == 2 and "not allowed with" in both.stderr
    missing = run_mount(emulator.url, mountpoint, "--user", "admin", "--ca-bundle", str(tmp_path / "none.pem"),
                        password="admin")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


@pytest.mark.parametrize("option", ["--ca-bundle", "--insecure"])
def test_a_private_ca_or_insecure_mounts_over_tls(option: str, emulator: EmulatorServer,
                                                  certificate: tuple[Path, Path], mount_factory: MountFactory) -> None:
    with Front(emulator.url, tls=server_context(certificate)) as front:
        options = ["--ca-bundle", str(certificate[0])] if option == "--ca-bundle" else ["--insecure"]
        mounted = mount_factory(emulator_at(emulator, front.url), *options)
        data = subprocess.run(["cat", str(mounted.path / SESSION_FILE)], capture_output=True, timeout=30,
                              check=True).stdout
        assert data[128:132] == b"DICM"
        assert any("/files/" in line for line in front.received)  # the bytes came through TLS
        warned = "TLS certificate verification is OFF" in mounted.log_text()
        assert warned == (option == "--insecure")
        if option == "--insecure":
            mounted.expect_errors = False  # a WARNING, not an error
        unmount(mounted.path)


def emulator_at(emulator: EmulatorServer, url: str) -> EmulatorServer:
    """``emulator`` seen at another URL (mount_factory mounts ``.url``)."""

    class Fronted:
        def __getattr__(self, name: str) -> Any:
            return getattr(emulator, name)

    fronted = Fronted()
    fronted.url = url  # type: ignore[attr-defined]
    return fronted  # type: ignore[return-value]


# -- a login page instead of a file ------------------------------------------------------------------------

def test_a_login_page_instead_of_a_file_is_eio_never_the_file(emulator: EmulatorServer,
                                                              mount_factory: MountFactory) -> None:
    require_tools("cat")
    def login_page_for_files(method: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
        if method == "GET" and "/files/" in path and "format=" not in path:
            return 200, {"Content-Type": "text/html;charset=UTF-8"}, LOGIN_PAGE
        return None

    with Front(emulator.url, answer=login_page_for_files) as front:
        mounted = mount_factory(emulator_at(emulator, front.url))
        mounted.expect_errors = True
        target = mounted.path / SESSION_FILE
        assert target.stat().st_size > 0  # listings pass through
        result = subprocess.run(["cat", str(target)], capture_output=True, timeout=30)
        assert result.returncode != 0 and "Input/output error" in result.stderr.decode()
        assert result.stdout == b""  # not one byte of the page
        small = mounted.path / "projects/DEMO/resources/protocols/protocol.txt"  # smaller than the page
        assert small.stat().st_size < len(LOGIN_PAGE)
        result = subprocess.run(["cat", str(small)], capture_output=True, timeout=30)
        assert result.returncode != 0 and result.stdout == b""
        errors = [line for line in mounted.log_text().splitlines() if " ERROR " in line]
        assert len(errors) >= 2 and all("login page" in line and "text/html" in line for line in errors)
        assert "ignores HTTP Range" not in mounted.log_text()


# -- hostile documents -----------------------------------------------------------------------------------

SECRET_MARKER = "TOP-SECRET-7d41"
HOSTILE_VALUES = {
    "group": '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>&e;',
    "evil": '"}\n\\\u0000</x> ]]> \u202e',
    "note": "&lt;&e; <script>alert(1)</script> \u0007",
}


def hostile_xml(secret: Path) -> bytes:
    """An external entity naming a local file, a parameter entity and a billion-laughs bomb."""
    lols = "".join(f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">' for n in range(1, 10))
    return (f'<?xml version="1.0"?>\n<!DOCTYPE xnat:Subject [<!ENTITY lol0 "lol">{lols}'
            f'<!ENTITY secret SYSTEM "file://{secret}"><!ENTITY % remote SYSTEM "file://{secret}"> %remote;]>\n'
            f'<xnat:Subject xmlns:xnat="http://nrg.wustl.edu/xnat" ID="X">&secret;&lol9;</xnat:Subject>\n').encode()


def test_hostile_documents_are_served_as_sent_and_never_expanded(fresh_emulator: EmulatorServer,
                                                                 mount_factory: MountFactory, tmp_path: Path) -> None:
    """``xnat.xml`` is the server's bytes, never parsed (no entity is resolved or expanded);
    ``xnat.json`` renders hostile field values as JSON strings that read back unchanged."""
    require_tools("cat")
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET_MARKER)
    store = fresh_emulator.store
    store.create_project("HOST")
    subject = store.create_subject("HOST", "S1", {"group": HOSTILE_VALUES["group"],
                                                  "fields": {"evil": HOSTILE_VALUES["evil"]}})
    store.create_experiment("HOST", subject.id, "E1", fields={"note": HOSTILE_VALUES["note"]})
    bomb = hostile_xml(secret)

    def hostile_object_xml(method: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
        if method == "GET" and "format=xml" in path:
            return 200, {"Content-Type": "text/xml;charset=UTF-8"}, bomb
        return None

    with Front(fresh_emulator.url, answer=hostile_object_xml) as front:
        mounted = mount_factory(emulator_at(fresh_emulator, front.url))
        folder = mounted.path / "projects/HOST/subjects/S1"
        started = time.monotonic()
        served = subprocess.run(["cat", str(folder / "xnat.xml")], capture_output=True, timeout=30, check=True).stdout
        assert time.monotonic() - started < 5
        assert served == bomb  # byte for byte: nothing resolved, nothing expanded
        assert os.stat(folder / "xnat.xml").st_size == len(bomb)
        subject_doc = json.loads((folder / "xnat.json").read_bytes())
        experiment_doc = json.loads((folder / "experiments/E1/xnat.json").read_bytes())
    assert subject_doc["fields"]["group"] == HOSTILE_VALUES["group"]
    assert [f["field"] for f in subject_doc["children"]["fields/field"]] == [HOSTILE_VALUES["evil"]]
    assert experiment_doc["fields"]["note"] == HOSTILE_VALUES["note"]
    everything = served.decode() + json.dumps([subject_doc, experiment_doc]) + mounted.log_text()
    assert SECRET_MARKER not in everything and "lollollol" not in everything
