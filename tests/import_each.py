"""Import each named module first, in a fresh package: ``python tests/import_each.py MODULE ...`` prints one line per
module that fails to import (nothing when all import), for ``test_layout``'s import-cycle check."""

import importlib
import sys


def main(names: list[str]) -> None:
    for name in names:
        # Third-party modules stay loaded (they cannot be part of doctune's cycles); doctune's own start afresh.
        for loaded in [module for module in sys.modules if module == "doctune" or module.startswith("doctune.")]:
            del sys.modules[loaded]
        try:
            importlib.import_module(name)
        except Exception as exc:  # any failure to import is what this reports
            print(f"{name}: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main(sys.argv[1:])
