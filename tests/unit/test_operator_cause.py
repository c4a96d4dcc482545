"""An operator's close commands and halts are told apart from every guard's by their cause."""

from tradeguard.actions.bulk import OPERATOR
from tradeguard.domain.guards import GUARDS


def test_no_guard_is_named_as_the_operators_cause():
    # A guard of that name would share the operator's live-command slot per position, and its
    # re-arm would cancel the operator's commands.
    assert OPERATOR not in {guard.name for guard in GUARDS}
