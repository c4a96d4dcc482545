"""The live stream: account events fanned out to subscribers, across processes through Redis."""
