"""A simulated broker world that drives tradeguard the way real bridges and a real platform would.

Everything goes through the public HTTP API: the platform records expected trades with a user's
JWT, each account's bridge sends signed snapshots with `BridgeClient` and carries out the close
commands it gets back. Nothing here touches the database, so the simulator exercises exactly what
an MT5 bridge would, and runs against any tradeguard it can reach.

One module a room, from the bottom up:

- `market`: one seeded random walk per symbol (bid, ask, exact decimals), plus scripted trends and
  gaps; the symbols' pips and contracts are tradeguard's own (`tradeguard.domain.instruments`);
- `broker`: one account at the broker: balance, positions, orders waiting to be filled;
- `platform`: the signal platform, which tells tradeguard what each account should hold;
- `bridge`: an account's bridge: snapshots out, close commands in, acknowledgements out;
- `scenario`: which account does what at which step (matched trades, divergences, a crash, a gap),
  then free-running trading with occasional trouble;
- `clock`: broker time, simulated so that a run covers minutes of it in a few fast steps;
- `simulation`: the loop that ties them together (`build_simulation`, `run_demo_simulation`).
"""
