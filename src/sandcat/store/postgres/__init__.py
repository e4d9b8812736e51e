"""The PostgreSQL backend: every relational store, for running many instances.

Driven through psycopg 3 from worker threads (see ``database`` for why);
schema in numbered migrations (``schema``); messages partitioned by month
(``partitions``).
"""

from sandcat.store.postgres.database import Database, open_database

__all__ = ["Database", "open_database"]
