"""The executable's entry point (PyInstaller and `python -m codelace_box`)."""

import sys


def _run() -> None:
    """freeze_support() before click parses argv, then the command line."""
    from codelace_box.launcher import read_modules_from_this_binary

    read_modules_from_this_binary()  # first: a worker of `serve` runs only freeze_support()
    from multiprocessing import freeze_support

    freeze_support()
    from codelace_box.launcher import (
        follow_the_launcher,
        heed_interrupts_once,
        hold_the_unpacked_folder,
    )

    heed_interrupts_once()
    follow_the_launcher()
    hold_the_unpacked_folder()
    from codelace_box.cli import main

    main()


if __name__ == "__main__":
    try:
        _run()
    except KeyboardInterrupt:  # Ctrl-C before the command's own handling began (its imports)
        sys.stderr.write("error: aborted\n")
        sys.exit(1)
