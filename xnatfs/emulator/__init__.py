"""An XNAT-compatible REST server for tests, benchmarks and the demo.

An island: it imports nothing else from xnatfs, and nothing on the client side imports it. Its only
contract is XNAT's REST shape as described in the project's REST spec notes.
"""
