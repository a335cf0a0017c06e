"""The executable's entry point (PyInstaller and `python -m codelace_box`)."""

from multiprocessing import freeze_support

if __name__ == "__main__":
    freeze_support()
    from codelace_box.cli import main

    main()
