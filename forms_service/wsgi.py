"""The WSGI entry point (the command in full: README.md, "Start"). A complete deployment: each process that
imports this module (every gunicorn worker) also runs one background thread delivering the spool.
"""

from forms_service.delivery import start_delivery
from forms_service.memory import give_back_large_buffers
from forms_service.startup import load_app

give_back_large_buffers()
app = load_app()
start_delivery(app)
