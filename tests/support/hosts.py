"""API hosts of their own: `tradeguard serve` processes each in its own network namespace, on its own
address, over the one PostgreSQL and Redis of the machine, as separate machines behind a load
balancer would run.

PostgreSQL and Redis listen on 127.0.0.1 of the root namespace only, which no other namespace can
reach; each host reaches them through forwarders listening on its link's root-side address, so the
host connects to an address of its own, as a machine connects to a database server over the network.
The namespaces still share the file system, /dev/shm included, so each host gets its own epochs
directory, as a machine of its own has its own /dev/shm.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from tests.support.builders import PASSWORD, Caller
from tests.support.net import SHORT_KEEPALIVE, reachable
from tests.support.servers import TRADEGUARD
from tests.support.services import (
    IN_CI,
    POSTGRES_HOST,
    POSTGRES_PORT,
    POSTGRES_USER,
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_service,
)
from tests.support.tcp_proxy import TcpProxy
from tradeguard.auth.users import create_user
from tradeguard.settings import Settings
from tradeguard.store.db import create_engine, session_factory

API_PORT = 8000
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30
LOG_TAIL_BYTES = 4000


async def _ip(*arguments: str) -> None:
    """`ip ARGUMENTS`, failing with what ip said."""
    process = await asyncio.create_subprocess_exec(
        "ip", *arguments, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, error = await process.communicate()
    if process.returncode != 0:
        raise OSError(f"ip {' '.join(arguments)}: {error.decode().strip()}")


async def _ip_quietly(*arguments: str) -> None:
    """For teardown: what is already gone (a namespace's veth goes with it) is no error."""
    with contextlib.suppress(OSError):
        await _ip(*arguments)


async def require_network_namespaces() -> None:
    """Skip (fail under CI=true) unless this process may create network namespaces and veth pairs."""
    probe = f"tg-probe-{secrets.token_hex(3)}"
    try:
        await _ip("netns", "add", probe)
        try:
            await _ip("link", "add", f"{probe[3:]}a", "type", "veth", "peer", "name", f"{probe[3:]}b")
            await _ip_quietly("link", "del", f"{probe[3:]}a")
        finally:
            await _ip_quietly("netns", "del", probe)
    except OSError as exc:
        message = f"network namespaces are not available here ({exc})"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires them")
        pytest.skip(f"{message}; set CI=true to make this a failure")


@dataclass
class Host:
    """One API host: its namespace, its address, its own HTTP client, and the log of its processes."""

    name: str
    namespace: str
    address: str
    gateway: str
    environment: dict[str, str]
    log_path: Path
    to_redis: TcpProxy
    """Its link to Redis, which a test can cut (and start again) as a network outage of this host alone."""
    http: httpx.AsyncClient | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{API_PORT}"

    def caller(self, user: Caller) -> Caller:
        """The same signed-in user, talking to this host."""
        return Caller(api=self, user_id=user.user_id, email=user.email, role=user.role, token=user.token)

    def log_tail(self) -> str:
        with contextlib.suppress(FileNotFoundError), self.log_path.open("rb") as log:
            log.seek(max(0, self.log_path.stat().st_size - LOG_TAIL_BYTES))
            return log.read().decode(errors="replace")
        return ""


@dataclass
class Deployment:
    hosts: dict[str, Host]
    database: str
    """The shared PostgreSQL database's name."""

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    @property
    def database_url(self) -> str:
        """The shared database as the test process reaches it, for looking at what is stored."""
        return postgres_url(self.database)

    async def fetch(self, query: str, *arguments) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(
            host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, database=self.database
        )
        try:
            return await connection.fetch(query, *arguments)
        finally:
            await connection.close()

    async def sign_up(self, host: str) -> Caller:
        """A new user, signed in on `host`; `Host.caller` hands the same token to the others."""
        email = f"hosts-{uuid.uuid4().hex[:10]}@example.com"
        engine = create_engine(Settings(database_url=self.database_url, jwt_secret="unused-" + "x" * 32))
        try:
            async with session_factory(engine)() as session:
                user = await create_user(
                    session, email=email, password=PASSWORD, role="user", now=datetime.now(UTC)
                )
                await session.commit()
        finally:
            await engine.dispose()
        signing_in = await self[host].http.post(
            "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
        )
        assert signing_in.status_code == 200, signing_in.text
        return Caller(
            api=self[host], user_id=user.id, email=email, role="user", token=signing_in.json()["access_token"]
        )


async def _link(
    stack: contextlib.AsyncExitStack, namespace: str, veth: str, gateway: str, address: str
) -> None:
    """A namespace joined to the root namespace by a veth pair: `gateway` on the root side, `address` inside."""
    await _ip("netns", "add", namespace)
    stack.push_async_callback(_ip_quietly, "netns", "del", namespace)
    # Before the namespace goes, after every process started in it was stopped.
    stack.push_async_callback(_kill_leftovers, namespace)
    await _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}n")
    stack.push_async_callback(_ip_quietly, "link", "del", veth)
    await _ip("link", "set", f"{veth}n", "netns", namespace)
    await _ip("addr", "add", f"{gateway}/30", "dev", veth)
    await _ip("link", "set", veth, "up")
    await _ip("-n", namespace, "addr", "add", f"{address}/30", "dev", f"{veth}n")
    await _ip("-n", namespace, "link", "set", f"{veth}n", "up")
    await _ip("-n", namespace, "link", "set", "lo", "up")


async def _forward(
    stack: contextlib.AsyncExitStack, listen_host: str, target_host: str, port: int
) -> TcpProxy:
    forwarder = TcpProxy(target_host, port, listen_host=listen_host, port=port)
    await forwarder.start()
    stack.push_async_callback(forwarder.cut)
    return forwarder


async def _start(stack: contextlib.AsyncExitStack, host: Host, *arguments: str) -> asyncio.subprocess.Process:
    """A tradeguard command run inside the host's namespace (`ip netns exec` execs it, so the
    process is tradeguard itself), stopped when the deployment ends."""
    log = stack.enter_context(host.log_path.open("ab"))
    process = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        host.namespace,
        *TRADEGUARD,
        *arguments,
        env=host.environment,
        stdout=log,
        stderr=log,
    )
    stack.push_async_callback(_stop, process)
    return process


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _kill_leftovers(namespace: str) -> None:
    """Whatever is still running in the namespace once its processes were stopped, which would
    keep the namespace's network alive."""
    listing = await asyncio.create_subprocess_exec(
        "ip", "netns", "pids", namespace, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    pids, _ = await listing.communicate()
    for pid in pids.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


async def _forget_cache(namespace: str) -> None:
    """The deployment's cache entries, which would otherwise stay in the shared Redis for their time to live."""
    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{namespace}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


async def _until_listening(host: Host, process: asyncio.subprocess.Process) -> None:
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_SECONDS
    while not reachable(host.address, API_PORT):
        if process.returncode is not None:
            raise RuntimeError(f"host {host.name} exited with {process.returncode}:\n{host.log_tail()}")
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"host {host.name} not listening on {host.url}:\n{host.log_tail()}")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def api_hosts(
    directory: Path,
    hosts: Mapping[str, Mapping[str, str]],
    *,
    shared: Mapping[str, str] | None = None,
    worker_on: str,
) -> AsyncIterator[Deployment]:
    """`tradeguard serve` on each named host (with that host's own settings on top of `shared`),
    and one `tradeguard worker` on `worker_on`, over a throwaway PostgreSQL database and a cache
    namespace of their own; everything is taken down again, whatever happens."""
    await require_network_namespaces()
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    redis = urlsplit(REDIS_URL)
    require_service("Redis", redis.hostname, redis.port)
    token = secrets.token_hex(3)
    # Random private /30 subnets, so that runs side by side never share an address.
    subnet = f"10.{100 + secrets.randbelow(100)}.{secrets.randbelow(256)}"
    agreed = {
        # What every host must share: the signing key of tokens, the key of device secrets,
        # the cache's keys; and the worker is not in the API processes.
        "TRADEGUARD_JWT_SECRET": secrets.token_urlsafe(32),
        "TRADEGUARD_SECRET_KEY": Fernet.generate_key().decode(),
        "TRADEGUARD_CACHE_NAMESPACE": f"tg:test:{uuid.uuid4().hex}:",
        "TRADEGUARD_RUN_WORKER_IN_API": "false",
        **(shared or {}),
    }
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(_forget_cache, agreed["TRADEGUARD_CACHE_NAMESPACE"])
        database = await create_postgres_database()
        stack.push_async_callback(drop_postgres_database, database)
        deployment = Deployment({}, database)
        for index, (name, settings) in enumerate(hosts.items()):
            gateway, address = f"{subnet}.{4 * index + 1}", f"{subnet}.{4 * index + 2}"
            await _link(stack, f"tg-{token}-{name}", f"tg{token}{name}", gateway, address)
            await _forward(stack, gateway, POSTGRES_HOST, POSTGRES_PORT)
            to_redis = await _forward(stack, gateway, redis.hostname, redis.port)
            data_dir = directory / name
            (data_dir / "epochs").mkdir(parents=True)
            environment = {
                **os.environ,
                **agreed,
                # The same database and Redis, reached at this host's own address for them.
                "TRADEGUARD_DATABASE_URL": f"postgresql+asyncpg://{POSTGRES_USER}@{gateway}:{POSTGRES_PORT}/{database}",
                "TRADEGUARD_REDIS_URL": f"redis://{gateway}:{redis.port}{redis.path}",
                "TRADEGUARD_DATA_DIR": str(data_dir),
                "TRADEGUARD_NEAR_CACHE_EPOCHS_DIR": str(data_dir / "epochs"),
                **settings,
            }
            environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
            deployment.hosts[name] = Host(
                name,
                f"tg-{token}-{name}",
                address,
                gateway,
                environment,
                data_dir / "tradeguard.log",
                to_redis,
            )
        serving = {
            host.name: await _start(stack, host, "serve", "--host", host.address, "--port", str(API_PORT))
            for host in deployment.hosts.values()
        }
        await asyncio.gather(
            *(_until_listening(deployment[name], process) for name, process in serving.items())
        )
        # After the hosts have migrated the schema, which the worker does not do.
        await _start(stack, deployment[worker_on], "worker")
        for host in deployment.hosts.values():
            host.http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=host.url, timeout=30, limits=SHORT_KEEPALIVE)
            )
        yield deployment
