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

A server that goes away (mt5server.exe restarted) answers as the package does when its terminal
is gone: None, and `last_error()` -10004 "No IPC connection"; the next `initialize()` connects again.
"""

from __future__ import annotations

import contextlib
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

RES_E_INTERNAL_FAIL_CONNECT = -10004
"""The package's `last_error()` code when it has no connection to its terminal."""


class RemotePackage:
    """Stands where `import MetaTrader5` would: constants as attributes, functions as methods."""

    def __init__(self, host: str, port: int, *, timeout_seconds: float = 60) -> None:
        import rpyc

        self._rpyc = rpyc
        self._host, self._port, self._timeout_seconds = host, port, timeout_seconds
        self._types: dict[tuple[str, tuple[str, ...]], type] = {}
        self._lost: str | None = None
        """Why the server cannot be reached, until an `initialize()` reaches it again."""
        self.__name__ = f"MetaTrader5 at {host}:{port}"
        self._open()

    def _open(self) -> None:
        connection = self._rpyc.classic.connect(self._host, self._port)
        connection._config["sync_request_timeout"] = self._timeout_seconds
        connection.execute(REMOTE_HELPER)
        self._connection = connection
        self._call = connection.namespace["_tradeguard_call"]
        self._constant = connection.namespace["_tradeguard_constant"]
        self._lost = None

    def _reopen(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.close()
        try:
            self._open()
        except OSError as error:
            self._lost = f"No IPC connection: no RPyC server at {self._host}:{self._port}: {error}"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name.isupper():
            value = json.loads(self._constant(name))
            setattr(self, name, value)
            return value
        return partial(self._invoke, name)

    def _invoke(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._lost is not None and name == "initialize":
            self._reopen()
        if self._lost is None:
            try:
                return self._local(json.loads(self._call(name, json.dumps([args, kwargs]))))
            except (EOFError, OSError) as error:
                reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                self._lost = (
                    f"No IPC connection: the RPyC server at {self._host}:{self._port} is gone ({reason})"
                )
        if name == "last_error":
            return (RES_E_INTERNAL_FAIL_CONNECT, self._lost)
        return False if name == "initialize" else None

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
