"""Delivery: payload building, the HTTP sender with its SSRF guard, jobs and retries."""
