"""The WSGI entry point: `gunicorn forms_service.wsgi:app` (settings from FORMS_* variables).

A complete deployment: each process that imports this module (every gunicorn
worker) also runs one background thread delivering the spool.
"""

import sys

from forms_service import create_app
from forms_service.config import ConfigError
from forms_service.delivery import start_delivery

# gunicorn respawns a worker that exits with 1 forever, but halts the whole server on
# its "application failed to load" status: a bad setting must stop start-up, once.
APP_LOAD_ERROR = 4

try:
    app = create_app()
except ConfigError as error:
    print(error.code, file=sys.stderr)
    sys.exit(APP_LOAD_ERROR)
start_delivery(app)
