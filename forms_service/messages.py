"""What is said around the fields when a form is refused or fails: one msgid each,
shared by the service's answers (answers.py, templates/error.html) and the site's
forms (overrides/hooks/forms.py), so the two never drift apart."""

from __future__ import annotations

from .form_model import N_, Form

FAILURES = {
    400: N_("The form could not be read. Please send it again from the website."),
    403: N_("This form can only be sent from the association's website."),
    404: N_("This page does not exist."),
    405: N_("This address only receives forms sent from the website."),
    413: N_(
        "What you sent is too large: the CV may be at most {max_megabytes} MB and each text at most {max_length} characters."
    ),
    415: N_("Please send the form from the website, as a normal web form."),
    429: N_(
        "Too many attempts from your connection. Please try again later, or write to us at info@cocreatehumanity.org."
    ),
    500: N_("Sorry, something went wrong on our side. Nothing was sent. Please try again later."),
    503: N_("Sorry, we could not pass on your message just now. Nothing was sent. Please try again in a few minutes."),
}
# A 413 for a form without a file (the support form): no word of a CV.
TOO_LARGE_WITHOUT_FILE = N_("What you sent is too large: each text may be at most {max_length} characters.")
# A 503 of its own: the spool holds all it may (FORMS_SPOOL_MAX_BYTES); a request for help still gets in.
SPOOL_FULL = N_(
    "Sorry, we are receiving more than we can hold just now. Nothing was sent. Please try again in an hour."
)
REFUSED_TITLE = N_("Your form could not be sent")
FAILED_TITLE = N_("Something went wrong")
BACK_TO_FORM = N_("Back to the form")
BACK_TO_SITE = N_("Back to the website")
BACK_KEEPS = N_("Your browser's back button usually keeps what you typed.")
CORRECT_BELOW = N_("Please correct the following, then send the form again:")
NETWORK_FAILURE = N_(
    "We could not reach our service. Please check your connection, then send again: what you typed is still here."
)
CHOOSE_FILE_AGAIN = N_("The file you chose could not be kept: please choose it again.")
REFUSED_NOTICE = N_("What to correct is shown with the form below; what you typed is still there.")
# Under a form whose script keeps a draft (assets/javascripts/forms.js): what it keeps, where, how long.
DRAFT_KEPT = N_(
    "While you write, what you type is kept in this tab only, so that a reload does not lose it; "
    "nothing leaves your device until you send the form, and it is erased as soon as we receive it."
)


def failure_message(status: int, form: Form | None) -> str:
    """The msgid that says what is true of `status` for the form posted: a form without a file
    is never told about a CV."""
    if status == 413 and form is not None and not form.takes_file:
        return TOO_LARGE_WITHOUT_FILE
    return FAILURES.get(status, FAILURES[500])
