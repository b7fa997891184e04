"""The samples run as a user runs them (``python -m voip.cli serve --bot samples.X:handle``,
``python samples/X.py``) against the real peers of ``tests/interop/conftest.py``, whose
fixtures are used here too."""

from __future__ import annotations

from pathlib import Path

import pytest
from interop.conftest import (  # noqa: F401  the peers' fixtures and their failure report
    _no_peer_survives,
    _note_first_peer,
    baresip_factory,
    kamailio,
    kamailio_factory,
    kamailio_server,
    loopback_pki,
    pytest_runtest_makereport,
    sipp,
    speech_wav,
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path
