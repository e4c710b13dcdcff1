"""Let the theme templates speak every language from the project's catalogues.

The same PO files (forms_service/translations/<lang>.po) translate the forms
service and the few strings our overrides add to Material's, so a translator
edits one file per language and a new language needs no code change.
"""

from __future__ import annotations

from forms_service import i18n


def _catalogue(config):
    plugin = config.plugins["i18n"]
    return i18n.catalogue(plugin.current_language or plugin.default_language)


def on_env(env, config, files):
    i18n.install(env)
    return env


def on_page_context(context, page, config, nav):
    context["catalogue"] = _catalogue(config)
    return context


def on_template_context(context, template_name, config):
    context["catalogue"] = _catalogue(config)
    return context
