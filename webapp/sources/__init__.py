"""Pulling submissions from other servers (ODK Central): client, cursor, poll job.

Submissions enter through ingest's storing, never around it (entry.py); see
docs/central.md.
"""
