"""What the tests and the benchmarks both run the project with: the documented gunicorn, the
deploy/ nginx, a real SMTP server, sample documents and complete settings.

Tests and benchmarks import from here and never from each other.
"""
