"""Store profile of a service process, loaded at start-up when the bench puts this folder on PYTHONPATH.

With RELAIS_BENCH_PROFILE_DIR set, a PyMongo command listener (registered globally, so it sees the
service's client without any change to the service) sums the time of each kind of store command:
command, collection and the shape of its filter (`find relais_routing.routes {_id}`). Every two seconds
it writes the sums to `<dir>/<pid>.json`; the bench reads them after a phase. Where the store time goes
tells which queries FerretDB answers slowly (a filter it cannot use an index for reads the collection).
"""

from __future__ import annotations

import json
import os
import threading
import time

_DIR = os.environ.get("RELAIS_BENCH_PROFILE_DIR")

if _DIR:
    from pymongo import monitoring

    _FILTER_OF = {"find": "filter", "count": "query", "findAndModify": "query", "distinct": "query"}
    _LISTS = {"update": "updates", "delete": "deletes"}

    def _shape(filter_doc: object) -> str:
        if not isinstance(filter_doc, dict):
            return "{}"
        keys = []
        for key, value in filter_doc.items():
            operator = next(iter(value), "") if isinstance(value, dict) and value else ""
            keys.append(f"{key}:{operator}" if str(operator).startswith("$") else key)
        return "{" + ",".join(sorted(keys)) + "}"

    def _key(event: monitoring.CommandStartedEvent) -> str:
        command, name = event.command, event.command_name
        collection = command.get(name)
        if name in _FILTER_OF:
            shape = _shape(command.get(_FILTER_OF[name]))
        elif name in _LISTS:
            items = command.get(_LISTS[name]) or [{}]
            shape = _shape(items[0].get("q")) + (f" x{len(items)}" if len(items) > 1 else "")
        else:
            shape = ""
        target = f"{event.database_name}.{collection}" if isinstance(collection, str) else event.database_name
        return f"{name} {target} {shape}".strip()

    class _Listener(monitoring.CommandListener):
        def __init__(self) -> None:
            self.started_map: dict[tuple[int, tuple[str, int | None]], str] = {}
            self.totals: dict[str, list[float]] = {}  # key -> [count, seconds]
            self.lock = threading.Lock()

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            self.started_map[(event.request_id, event.connection_id)] = _key(event)

        def _done(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent) -> None:
            key = self.started_map.pop((event.request_id, event.connection_id), None)
            if key is None:
                return
            with self.lock:
                total = self.totals.setdefault(key, [0, 0.0])
                total[0] += 1
                total[1] += event.duration_micros / 1e6

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            self._done(event)

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            self._done(event)

    _listener = _Listener()
    monitoring.register(_listener)

    def _dump(directory: str) -> None:
        path = os.path.join(directory, f"{os.getpid()}.json")
        while True:
            time.sleep(2)
            with _listener.lock:
                data = {k: {"count": int(c), "seconds": round(s, 4)} for k, (c, s) in _listener.totals.items()}
            tmp = f"{path}.tmp"
            with open(tmp, "w") as fh:
                json.dump(data, fh)
            os.replace(tmp, path)

    threading.Thread(target=_dump, args=(_DIR,), name="bench-store-profile", daemon=True).start()
