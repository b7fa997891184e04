"""voip-session: a SIP user agent and RTP media engine on asyncio.

Calls are OSI sessions (ITU-T X.215); the wire speaks SIP (RFC 3261) and RTP (RFC 3550).
"""

__version__ = "0.1.0"
