"""A production worker (`forms_service.wsgi:app`, its delivery thread included) with heap.py's sampler:
the benchmark's app for what an upload in progress costs while earlier ones are delivered."""

from benchmarks.heap import start_sampling
from forms_service.wsgi import app

start_sampling()

__all__ = ["app"]
