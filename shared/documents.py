"""The PyMongo types every store names: documents are plain dicts, so these are the parameterised ones."""

from __future__ import annotations

from typing import Any, TypeAlias

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

Document: TypeAlias = dict[str, Any]
Collection: TypeAlias = AsyncCollection[Document]
Database: TypeAlias = AsyncDatabase[Document]
Client: TypeAlias = AsyncMongoClient[Document]
