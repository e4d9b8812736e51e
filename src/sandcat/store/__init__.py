"""Storage: one interface per aggregate, an embedded implementation and real ones.

The interfaces (``typing.Protocol``) live in the modules named for their
aggregate (``accounts``, ``contacts``, ``groups``, ``messages``); the SQLite
implementations are in ``sandcat.store.sqlite``.
"""
