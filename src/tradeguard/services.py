"""What the process holds open for its lifetime, built once by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tradeguard.actions.guarding import GuardPolicy
from tradeguard.auth.credentials import CurrentCredentials
from tradeguard.auth.tokens import TokenCache
from tradeguard.cache import MemoryCache, NearCache, RedisCache, ResponseCache
from tradeguard.cache.epochs import SharedEpochs, epochs_path
from tradeguard.domain.instruments import InstrumentTable
from tradeguard.ingest import step
from tradeguard.ingest.batches import Batches
from tradeguard.ingest.devices import DeviceSecrets
from tradeguard.ingest.nonces import DatabaseNonces, NonceStore
from tradeguard.ingest.snapshots import IngestOutcome, IngestPolicy
from tradeguard.queries.service import ReadService
from tradeguard.redis_client import fail_fast_redis
from tradeguard.settings import Settings
from tradeguard.store.db import create_engine, session_factory
from tradeguard.store.instruments import load_instrument_table
from tradeguard.stream.bus import EventBus, MemoryBus, RedisBus
from tradeguard.unit_of_work import UnitOfWork, unit_of_work


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: ResponseCache
    nonces: NonceStore
    reads: ReadService
    device_secrets: DeviceSecrets
    jwt_secret: str
    tokens: TokenCache
    credentials: CurrentCredentials
    ingest_policy: IngestPolicy
    redis: Redis | None = None
    write_lock: asyncio.Lock | None = None
    instruments: InstrumentTable = field(default_factory=lambda: InstrumentTable({}))
    alerts_raised: asyncio.Event = field(default_factory=asyncio.Event)
    bus: EventBus = field(default_factory=MemoryBus)
    snapshot_batches: Batches[step.AdmittedSnapshot, IngestOutcome] = field(init=False)

    def __post_init__(self) -> None:
        self.snapshot_batches = Batches(
            lambda batch, turn: step.apply_batch(self, batch, turn),
            window=self.settings.ingest_batch_window_ms / 1000,
            max_size=self.settings.ingest_batch_max_size,
            in_flight=self.settings.ingest_batches_in_flight,
        )

    @classmethod
    def open(cls, settings: Settings) -> Services:
        engine = create_engine(settings)
        sessions = session_factory(engine)
        jwt_secret = settings.resolved_jwt_secret()
        redis = (
            fail_fast_redis(settings.redis_url, settings.redis_timeout_seconds)
            if settings.redis_url
            else None
        )
        if redis is not None:
            cache: ResponseCache = _shared_cache(settings, redis)
        else:
            cache = MemoryCache(
                ttl_seconds=settings.cache_ttl_seconds, max_entries=settings.cache_max_entries
            )
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            cache=cache,
            nonces=DatabaseNonces(),
            reads=ReadService(sessions, cache),
            device_secrets=DeviceSecrets(settings.resolved_secret_key()),
            jwt_secret=jwt_secret,
            tokens=TokenCache(jwt_secret),
            credentials=CurrentCredentials(sessions, cache),
            ingest_policy=IngestPolicy(
                guards=GuardPolicy(
                    notifiers=settings.notifier_names(), command_max_attempts=settings.command_max_attempts
                ),
                command_timeout=timedelta(seconds=settings.command_timeout_seconds),
                clock_skew_tolerance=timedelta(seconds=settings.clock_skew_tolerance_seconds),
            ),
            redis=redis,
            bus=RedisBus(redis, settings.redis_url, settings.cache_namespace)
            if redis is not None
            else MemoryBus(),
            # SQLite has one writer at a time, and a transaction that read before another's commit
            # cannot write at all; the embedded mode is one process, so one lock orders its writers.
            write_lock=asyncio.Lock() if engine.dialect.name == "sqlite" else None,
        )

    @contextlib.asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        """A session for a read-then-write unit of work; uncommitted work is rolled back on exit."""
        async with self.write_lock or contextlib.nullcontext(), self.sessions() as session:
            yield session

    def unit_of_work(
        self, *, ending_after: Callable[[], Awaitable[None]] | None = None
    ) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        """The one way a write ends (`unit_of_work.py`)."""
        return unit_of_work(self, ending_after=ending_after)

    async def load_instruments(self) -> None:
        async with self.sessions() as session:
            self.instruments = await load_instrument_table(session)

    async def close(self) -> None:
        await self.reads.wait_for_rebuilds()
        await self.credentials.wait_for_refreshes()
        await self.bus.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


def _shared_cache(settings: Settings, redis: Redis) -> ResponseCache:
    namespace = settings.cache_namespace
    epochs = SharedEpochs(epochs_path(f"{settings.redis_url}|{namespace}", settings.near_cache_epochs_dir))
    shared = RedisCache(
        redis,
        epochs,
        ttl_seconds=settings.cache_ttl_seconds,
        retry_seconds=settings.redis_retry_seconds,
        namespace=namespace,
        announce_channel=f"{namespace}invalidated" if settings.near_cache else None,
    )
    if not settings.near_cache:
        return shared
    return NearCache(
        shared, epochs, ttl_seconds=settings.cache_ttl_seconds, max_entries=settings.cache_max_entries
    )
