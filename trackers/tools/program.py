"""The command the user typed, for usage lines and hints: `siamscope` for the installed console
script, `python main.py` from a checkout (argparse would say `main.py`, which runs nothing)."""

from __future__ import annotations

import os
import sys


def program_name(argv0: str | None = None) -> str:
    argv0 = sys.argv[0] if argv0 is None else argv0
    name = os.path.basename(argv0 or "") or "siamscope"
    if name in ("main.py", "__main__.py", "-c"):
        return "python main.py"
    if name.endswith(".py"):
        return f"python {name}"
    return name
