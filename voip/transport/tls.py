"""TLS contexts for SIP over TLS (RFC 3261 §26.2, RFC 5922, RFC 5630).

A client verifies the server's certificate and checks it against the name it meant to
reach (RFC 5922 §7.3: the host part of the SIP/SIPS URI or the domain it resolved
from); both are on by default. Tests trust their own CA with ``cafile``.
"""

from __future__ import annotations

import ssl
from os import PathLike

StrPath = str | PathLike[str]


def client_context(cafile: StrPath | None = None) -> ssl.SSLContext:
    """A context that verifies servers against the system CAs, or only ``cafile``'s.

    Hostname checking stays on: a certificate valid for another name is refused.
    """
    context = ssl.create_default_context(cafile=cafile)
    # RFC 5630 and RFC 7525: nothing older than TLS 1.2.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def server_context(
    certfile: StrPath, keyfile: StrPath | None = None, *, cafile: StrPath | None = None
) -> ssl.SSLContext:
    """A context presenting ``certfile``; with ``cafile`` it also asks clients for a
    certificate signed by that CA (mutual TLS, RFC 5922 §7.4) and refuses others."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    if cafile is not None:
        context.verify_mode = ssl.CERT_REQUIRED
    return context
