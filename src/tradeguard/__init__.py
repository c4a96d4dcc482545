"""tradeguard: account reconciliation and risk guards for signal and copy-trading platforms."""

__version__ = "0.1.0"
