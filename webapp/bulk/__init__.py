"""Backfills and replays: sending a hook, in the background, what it missed.

- `ranges`: what a request asks for (dates, statuses), checked into Problems.
- `start`: counts what a request covers and records the bulk send.
- `batches`: makes one batch of its logs (INSERT ... SELECT for a backfill,
  a conditional UPDATE for a replay), moving its cursor in the same
  transaction.
- `fill`: the RQ job that makes batches while the bulk lane of the feed runs
  low, and its kick.
- `cancel`: stops a bulk send and what it had not sent yet.
- `progress`: what the panel and the API show, and the sweeper's care of
  unfinished bulk sends (resume, finish).

How it fits with live deliveries: docs/backfill.md.
"""
