"""What the process holds open for its lifetime, built once by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tradeguard.cache import MemoryCache, RedisCache, ResponseCache
from tradeguard.queries.service import ReadService
from tradeguard.settings import Settings
from tradeguard.store.db import create_engine, session_factory


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: ResponseCache
    reads: ReadService
    jwt_secret: str

    @classmethod
    def open(cls, settings: Settings) -> Services:
        engine = create_engine(settings)
        sessions = session_factory(engine)
        cache = build_cache(settings)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            cache=cache,
            reads=ReadService(sessions, cache),
            jwt_secret=settings.resolved_jwt_secret(),
        )

    async def close(self) -> None:
        await self.cache.close()
        await self.engine.dispose()


def build_cache(settings: Settings) -> ResponseCache:
    if settings.redis_url:
        return RedisCache(
            settings.redis_url,
            ttl_seconds=settings.cache_ttl_seconds,
            timeout_seconds=settings.redis_timeout_seconds,
            retry_seconds=settings.redis_retry_seconds,
        )
    return MemoryCache(ttl_seconds=settings.cache_ttl_seconds, max_entries=settings.cache_max_entries)
