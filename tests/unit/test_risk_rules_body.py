"""The rule set's JSON body: whatever a client sends is a rule set or a 422, never a crash."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tradeguard.accounts.risk_rules import RuleSetIn
from tradeguard.domain.guards.rules import RuleSet

numbers = st.sampled_from(["0", "-1", "0.5", "1", "5", "20", "100", "101", "1e3", "NaN", 3, 2.5, None, "x"])
zones = st.sampled_from(["UTC", "Europe/Prague", "server", "Mars/Base", "", None, 5])
enums = {
    "metric": ["equity", "balance", "floating", "margin"],
    "reference": [
        "initial_balance",
        "period_start_balance",
        "period_start_equity",
        "period_start_higher",
        "high_water_mark",
        "trailing_high_balance",
        "peak",
    ],
    "tier": ["alert", "halt", "close_all", "close_scope", "panic"],
    "kind": ["day", "week", "month", "quarter", "year", "hour"],
    "scope": ["all", "strategy", "manual", "some"],
    "resume": ["owner", "next_period", "cool_down", "never"],
}


def maybe(field: str, values) -> st.SearchStrategy[dict]:
    return st.one_of(st.just({}), values.map(lambda value: {field: value}))


def merged(*parts) -> st.SearchStrategy[dict]:
    return st.tuples(*parts).map(lambda dicts: {key: value for part in dicts for key, value in part.items()})


thresholds = merged(maybe("amount", numbers), maybe("percent", numbers), maybe("floor", numbers))
steps = merged(
    maybe("tier", st.sampled_from(enums["tier"])),
    maybe("threshold", thresholds),
    maybe("label", st.text(max_size=3)),
)
periods = merged(
    maybe("kind", st.sampled_from(enums["kind"])),
    maybe("time_zone", zones),
    maybe("reset", st.sampled_from(["00:00", "17:00", "25:00", "x"])),
)
rules = merged(
    maybe("id", st.sampled_from(["a", "b", "Bad Id", ""])),
    maybe("metric", st.sampled_from(enums["metric"])),
    maybe("reference", st.sampled_from(enums["reference"])),
    maybe("period", st.one_of(st.none(), periods)),
    maybe("steps", st.lists(steps, max_size=3)),
    maybe("buffer", numbers),
    maybe(
        "scope",
        merged(
            maybe("kind", st.sampled_from(enums["scope"])),
            maybe("magics", st.lists(st.integers(-2, 2**64), max_size=2)),
            maybe("signals", st.lists(st.sampled_from(["s", ""]), max_size=2)),
        ),
    ),
    maybe(
        "resume",
        merged(
            maybe("mode", st.sampled_from(enums["resume"])),
            maybe("below", numbers),
            maybe("after_seconds", st.integers(-5, 10**8)),
        ),
    ),
    maybe("lock_at_initial", st.booleans()),
    maybe("shadow", st.booleans()),
)
bodies = merged(
    maybe("rules", st.lists(rules, max_size=3)),
    maybe("preset", st.sampled_from(["ftmo-2-step", "fundednext-stellar-1-step", "nope"])),
    maybe("initial_balance", numbers),
    maybe("server_time_zone", zones),
    maybe("buffer", numbers),
    maybe("confirmations", st.sampled_from([0, 1, 3, True, "2"])),
)


@given(bodies)
def test_every_body_is_a_rule_set_or_a_422_at_a_named_field(body):
    try:
        parsed = RuleSetIn.model_validate(body)
    except ValidationError as refused:
        assert all(error["loc"] for error in refused.errors())
        return
    assert isinstance(parsed.to_domain(), RuleSet)
