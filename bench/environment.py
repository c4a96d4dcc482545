"""What a benchmark ran on: cores, CPU, database, cache and server settings, recorded with every result."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _command_output(*argv: str) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else None


async def database_version(database_url: str) -> str | None:
    """`SELECT version()` (PostgreSQL) or the SQLite library version."""
    if database_url.startswith("sqlite"):
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            version = (await connection.execute(text("SELECT version()"))).scalar_one()
            settings = {}
            for name in ("max_connections", "shared_buffers", "synchronous_commit", "fsync"):
                settings[name] = (await connection.execute(text(f"SHOW {name}"))).scalar_one()
        return f"{version} ({', '.join(f'{k}={v}' for k, v in settings.items())})"
    finally:
        await engine.dispose()


async def redis_version(redis_url: str) -> str | None:
    if not redis_url:
        return None
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        info = await client.info("server")
        return f"Redis {info.get('redis_version')}"
    except Exception as exc:  # noqa: BLE001 - recorded, not fatal
        return f"unreachable ({type(exc).__name__})"
    finally:
        await client.aclose()


async def describe(*, database_url: str, redis_url: str, server: dict | None = None, **extra) -> dict:
    """The environment block every result file carries."""
    return {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": memory_gib(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "database": _redact(database_url),
        "database_version": await database_version(database_url),
        "cache": _redact(redis_url) if redis_url else "in-process (memory)",
        "cache_version": await redis_version(redis_url),
        "packages": {
            name: _version(name)
            for name in ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "sqlalchemy", "asyncpg")
            + ("pydantic", "redis", "orjson")
        },
        "wrk": _command_output("wrk", "-v"),
        "server": server or {},
        **extra,
    }


def _redact(url: str) -> str:
    """No password in a result file."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
