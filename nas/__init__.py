"""nas: hardware-aware neural architecture search for mobile CNNs."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

# The source tree keeps three subpackages beside this one (search_spaces/, evaluators/,
# storage/) and an install maps them to nas.search_spaces, nas.evaluators and nas.storage.
# Ray puts the driver's working directory first on its workers' sys.path, so a search
# started inside a checkout imports `nas` from the tree rather than from the installed
# package; searching the tree's top level too makes the same names resolve there.
_TREE = Path(__file__).resolve().parent.parent
if all((_TREE / name / "__init__.py").is_file()
       for name in ("search_spaces", "evaluators", "storage")):
    __path__.append(str(_TREE))  # noqa: F821 - a package's __path__ is set before this runs
del _TREE
