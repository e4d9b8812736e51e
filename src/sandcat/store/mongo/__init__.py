"""MongoDB implementations of the store interfaces (pymongo, off the event loop)."""

from sandcat.store.mongo.client import MongoClient, open_mongo
from sandcat.store.mongo.inbox import MongoInboxStore

__all__ = ["MongoClient", "MongoInboxStore", "open_mongo"]
