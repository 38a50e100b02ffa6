"""SiamScope: `python main.py` opens the app; `python main.py track|trackers|bench|eval ...` run headless."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# OpenMP reads its wait policy once, when torch starts it: set it before anything imports torch
from trackers.core.compute import prepare_environment  # noqa: E402

prepare_environment()

HEADLESS_COMMANDS = {
    "track",
    "trackers",
    "bench",
    "eval",
    "train",
    "download",
    "zoo",
    "vot-setup",
    "vot-serve",
    "-h",
    "--help",
    "--version",
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in HEADLESS_COMMANDS:
        from trackers.tools.cli import main as cli_main

        return cli_main(argv)
    from app.main_window import run_app

    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
