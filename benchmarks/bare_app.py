"""The baseline: a bare Flask endpoint under the same gunicorn setup as the service.

It parses the same form body (so upload parsing is in both figures) and
answers 202, doing nothing else; the ratio service/bare is the cost of
validation, content checks, composing, sealing and the durable spool.

    gunicorn benchmarks.bare_app:app
"""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/forms/<form_name>")
def submit(form_name: str):
    """Read every field and file, then accept."""
    sizes = [len(storage.read()) for storage in request.files.values()]
    return jsonify(ok=True, fields=len(request.form), file_bytes=sum(sizes)), 202


@app.get("/forms/healthz")
def healthz():
    """Readiness, polled by harness.gunicorn before a run starts."""
    return jsonify(ok=True)
