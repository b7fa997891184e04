"""Helpers the tests share: a DNS responder on loopback, the real SIP peers' fixtures."""
