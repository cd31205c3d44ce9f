"""The ``xnatfs`` command: dispatches a sub-command to the module that owns it.

Each owning module exposes ``main(argv: list[str]) -> int`` and parses its own options, so the
heavy imports (mfusepy, werkzeug, pydicom) happen only for the command that needs them.
"""

from __future__ import annotations

import importlib
import sys

#: sub-command → (module with main(argv), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("xnatfs.demo", "emulator with sample data on 127.0.0.1, mounted; Ctrl-C unmounts"),
    "mount": ("xnatfs.daemon", "mount an XNAT server: xnatfs mount URL MOUNTPOINT"),
    "umount": ("xnatfs.daemon", "unmount: xnatfs umount MOUNTPOINT"),
    "emulator": ("xnatfs.emulator.__main__", "run the XNAT emulator: xnatfs emulator [--sample] [--port N]"),
    "import": ("xnatfs.commands", "upload a zip of DICOM to the import service"),
    "prearchive": ("xnatfs.commands", "list, archive, move or delete prearchive sessions"),
    "spool": ("xnatfs.commands", "files mounts could not send: list, retry or clear them"),
    "download": ("xnatfs.transfer_commands", "download a tree: xnatfs download URL REMOTE LOCAL"),
    "upload": ("xnatfs.transfer_commands", "upload a folder into a resource: xnatfs upload URL LOCAL REMOTE"),
}


def usage() -> str:
    lines = ["usage: xnatfs COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'xnatfs COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:  # as argparse does for a missing argument: usage on stderr, exit 2
        print(usage(), file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        from xnatfs import __version__

        print(f"xnatfs {__version__}")
        return 0
    command = args[0]
    if command not in COMMANDS:
        print(f"xnatfs: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    # The emulator's main parses its own argv (it is also `python -m xnatfs.emulator`);
    # the others get the command name first so one module can own several commands.
    if command == "emulator":
        return int(module.main(args[1:]) or 0)
    return int(module.main(args) or 0)
