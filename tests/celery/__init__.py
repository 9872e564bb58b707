"""Scenarios with a real Celery worker (in a subprocess) and a real Celery client."""
