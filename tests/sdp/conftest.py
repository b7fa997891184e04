"""Lets the SDP tests import their helper module ``sdp_corpus``.

The suite runs with ``--import-mode=importlib``, which does not put test folders on
``sys.path``; this conftest is imported before the test modules beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
