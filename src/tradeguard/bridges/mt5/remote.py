"""The MetaTrader5 package of another Python, reached over an RPyC classic server.

On Linux the terminal runs under Wine with a Windows Python next to it; mt5linux's `mt5server.exe`
(or its Docker image) serves that Python's `MetaTrader5` package over RPyC, by default on port
18812. mt5linux 1.1.1's own client cannot only connect: constructing `MetaTrader5(host=, port=)`
always goes through its container manager, which needs docker or udocker, starts (or pulls) a
container, and moves to the next free port when the requested one is taken by a server it did not
start. So the bridge talks RPyC itself, to a server that is already running.

Each call crosses as JSON text (arguments there, answers back): named tuples come back as local
named tuples with the same type name and fields, floats exactly as the remote package gave them,
and nothing depends on pickling the remote package's own types.
"""

from __future__ import annotations

import json
from collections import namedtuple
from functools import partial
from typing import Any

REMOTE_HELPER = """
import json as _tradeguard_json
import MetaTrader5 as _tradeguard_mt5


def _tradeguard_plain(value):
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {"__namedtuple__": type(value).__name__, "fields": list(value._fields),
                "values": [_tradeguard_plain(item) for item in value]}
    if isinstance(value, (tuple, list)):
        return [_tradeguard_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _tradeguard_plain(item) for key, item in value.items()}
    return value


def _tradeguard_call(name, payload):
    args, kwargs = _tradeguard_json.loads(payload)
    return _tradeguard_json.dumps(_tradeguard_plain(getattr(_tradeguard_mt5, name)(*args, **kwargs)))


def _tradeguard_constant(name):
    return _tradeguard_json.dumps(getattr(_tradeguard_mt5, name))
"""


class RemotePackage:
    """Stands where `import MetaTrader5` would: constants as attributes, functions as methods."""

    def __init__(self, host: str, port: int, *, timeout_seconds: float = 60) -> None:
        import rpyc

        self._connection = rpyc.classic.connect(host, port)
        self._connection._config["sync_request_timeout"] = timeout_seconds
        self._connection.execute(REMOTE_HELPER)
        self._call = self._connection.namespace["_tradeguard_call"]
        self._constant = self._connection.namespace["_tradeguard_constant"]
        self._types: dict[tuple[str, tuple[str, ...]], type] = {}
        self.__name__ = f"MetaTrader5 at {host}:{port}"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name.isupper():
            value = json.loads(self._constant(name))
            setattr(self, name, value)
            return value
        return partial(self._invoke, name)

    def _invoke(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._local(json.loads(self._call(name, json.dumps([args, kwargs]))))

    def _local(self, value: Any) -> Any:
        if isinstance(value, dict) and "__namedtuple__" in value:
            key = (value["__namedtuple__"], tuple(value["fields"]))
            if key not in self._types:
                self._types[key] = namedtuple(*key)
            return self._types[key](*(self._local(item) for item in value["values"]))
        if isinstance(value, list):
            return tuple(self._local(item) for item in value)
        if isinstance(value, dict):
            return {key: self._local(item) for key, item in value.items()}
        return value

    def close(self) -> None:
        self._connection.close()
