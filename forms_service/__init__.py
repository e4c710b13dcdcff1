"""forms_service: receives the volunteer and support forms, spools them durably and relays them by email.

The package imports nothing itself: the form definitions (fields.py), which the site build reads, load without
Flask. `flask --app forms_service` finds the app factory (app.create_app) here too, imported only when asked for.
"""


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
