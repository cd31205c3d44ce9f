"""HTTP transport (L1): credentials, the requests session, status → error mapping, fail fast on a dead server.

The only package that imports requests or urllib3, and nothing of them leaves it: callers get
:class:`~xnatfs.transport.responses.Response`, :class:`~xnatfs.transport.responses.Stream` and
:mod:`xnatfs.errors` classes.
"""
