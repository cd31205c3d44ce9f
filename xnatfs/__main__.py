"""``python -m xnatfs`` is the ``xnatfs`` command."""

from xnatfs.cli import main

raise SystemExit(main())
