"""SIP transports on asyncio (UDP, TCP, TLS) and server location (RFC 3263)."""
