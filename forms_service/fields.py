"""The one definition of every form, shared by the site build and the service.

The MkDocs build imports this module to render the HTML forms and the privacy page's list of what each form
collects, and the service routes, validates and composes from the very same objects, so neither the page nor
the policy can drift from what the service accepts. Adding a form is adding a Form to FORMS (README.md, "Adding
a form"); what a definition is made of, and what it must hold: form_model.py.
"""

from __future__ import annotations

from types import MappingProxyType

from .form_model import (
    CHECKBOX,
    DOCUMENT_TYPES,
    EMAIL,
    FILE,
    HIDDEN,
    HONEYPOT,
    MEGABYTE,
    N_,
    SELECT,
    TEL,
    TEXT,
    TEXTAREA,
    Acknowledgement,
    Choice,
    Field,
    Form,
    Urgency,
)

RESUME_MAX_BYTES = 5 * MEGABYTE
LONG_TEXT_MAX = 5000


LANG = Field("lang", HIDDEN, max_length=16)
HONEYPOT_FIELD = Field("website", HONEYPOT, label=N_("Leave this field empty"), max_length=200, autocomplete="off")


def _consent(label: str) -> Field:
    """The consent checkbox; its text names the purpose so the question "why" is answered."""
    return Field(
        "consent",
        CHECKBOX,
        label=label,
        required=True,
        staff_label=N_("Consent to the privacy policy"),
        purpose=N_("To let you agree, knowingly, to our handling this information as described on this page."),
        errors=MappingProxyType({"required": N_("Please tick this box so that we may process what you send.")}),
    )


VOLUNTEER = Form(
    name="volunteer",
    title=N_("Become a volunteer"),
    page="/volunteer.html",
    thanks_page="/volunteer-thanks.html",
    submit_label=N_("Send my application"),
    # The applicant's name helps the coordinators sort applications.
    subject=N_("Volunteer application from {name}"),
    sealed_subject=N_("New volunteer application (encrypted)"),
    reply_to="email",
    acknowledgement=Acknowledgement(
        subject=N_("We have received your application"),
        paragraphs=(
            N_("Thank you for your interest in becoming a volunteer peer supporter with CoCreate Humanity."),
            N_("We have received your application. A member of our team will read it and answer you by email."),
        ),
    ),
    fields=(
        Field(
            "name",
            TEXT,
            N_("Full name"),
            required=True,
            max_length=200,
            autocomplete="name",
            purpose=N_("To know who is applying."),
        ),
        Field(
            "email",
            EMAIL,
            N_("Email address"),
            required=True,
            max_length=254,
            autocomplete="email",
            hint=N_("We only use it to answer you."),
            purpose=N_("To reply to you and send you the acknowledgement."),
        ),
        Field(
            "motivation",
            TEXTAREA,
            N_("Your motivation"),
            required=True,
            max_length=LONG_TEXT_MAX,
            hint=N_("Why would you like to become a peer supporter? (5000 characters at most)"),
            purpose=N_("To understand why you would like to become a peer supporter."),
            staff_label=N_("Motivation"),
        ),
        Field(
            "resume",
            FILE,
            N_("Your CV"),
            required=True,
            accept=DOCUMENT_TYPES,
            max_bytes=RESUME_MAX_BYTES,
            hint=N_(
                "PDF, DOCX or ODT, 5 MB at most. Links are fine, but not macros, passwords, or linked pictures "
                "and templates the file loads when opened: if yours is refused, export it as PDF."
            ),
            purpose=N_("To learn about your background and experience."),
            staff_label=N_("CV (attached)"),
        ),
        Field(
            "languages",
            TEXT,
            N_("Languages you speak"),
            max_length=300,
            hint=N_("For example: English, French, Arabic."),
            purpose=N_("To know in which languages you could listen to your peers."),
        ),
        Field(
            "location",
            TEXT,
            N_("Country or time zone"),
            max_length=200,
            autocomplete="country-name",
            hint=N_("For example: Kenya, or UTC+3."),
            purpose=N_("To know where you are based."),
        ),
        Field(
            "availability",
            TEXT,
            N_("Availability"),
            max_length=500,
            hint=N_("The role asks for 2 to 4 hours a week. When are you usually available?"),
            purpose=N_("To know when you could give your time."),
        ),
        Field(
            "training",
            TEXTAREA,
            N_("Relevant training or experience"),
            max_length=2000,
            hint=N_("For example: peer support, psychological first aid, counselling, field experience."),
            purpose=N_(
                "To know about your training, for example in mental health first aid, coaching or psychosocial support."
            ),
        ),
        _consent(
            N_(
                "I agree that CoCreate Humanity uses these details, including my CV, "
                "only to consider my application, as the privacy policy explains."
            )
        ),
        LANG,
        HONEYPOT_FIELD,
    ),
)

SITUATIONS = (
    Choice("before_mission", N_("Before a mission")),
    Choice("on_mission", N_("On a mission")),
    Choice("between_missions", N_("Between two missions")),
    Choice("leaving_sector", N_("Leaving the humanitarian sector")),
    Choice("retired", N_("Retired")),
    Choice("other", N_("Other")),
)

PEER_LANGUAGES = (
    Choice("fr", N_("French")),
    Choice("en", N_("English")),
    Choice("ar", N_("Arabic")),
    Choice("es", N_("Spanish")),
    Choice("de", N_("German")),
    Choice("it", N_("Italian")),
    Choice("other", N_("Other")),
)

CONTACT_WAYS = (
    Choice("email", N_("By email")),
    Choice("phone", N_("By phone")),
    Choice("video", N_("By video call")),
)

SUPPORT = Form(
    name="support",
    title=N_("Ask for a listening ear"),
    page="/support.html",
    thanks_page="/support-thanks.html",
    submit_label=N_("Send my request"),
    # People in distress write here: subjects carry the reference only, never what they typed.
    subject=N_("Support request {reference}"),
    sealed_subject=N_("New support request (encrypted)"),
    urgent=Urgency(
        "urgent",
        subject=N_("URGENT: support request {reference}"),
        sealed_subject=N_("URGENT: new support request (encrypted)"),
    ),
    reply_to="email",
    uses_reserve=True,  # a few KB each: uploads flooding the spool must never lock out a request for help
    acknowledgement=Acknowledgement(
        subject=N_("We have received your request"),
        paragraphs=(
            N_("Thank you for reaching out to CoCreate Humanity."),
            N_("We have received your request. A peer supporter will contact you as soon as possible, in confidence."),
        ),
        # The support page's crisis box (docs/<lang>/support.md), in the same words.
        guidance=(
            N_(
                "This is not an emergency service: we cannot answer straight away. If your life or someone "
                "else's is in danger, or if you are thinking of harming yourself, get help now:"
            ),
            N_(
                "in Switzerland, call 143 to talk to someone, day and night (Die Dargebotene Hand / La Main "
                "Tendue), 144 for a medical emergency, or 112, the European emergency number;"
            ),
            N_("in the European Union, call 112;"),
            N_(
                "elsewhere, call the local emergency number, or find a helpline in your country on "
                "findahelpline.com, an international directory of helplines;"
            ),
            N_("on mission, also contact your organisation's medical service or staff-care service."),
        ),
    ),
    fields=(
        Field(
            "email",
            EMAIL,
            N_("Email address"),
            required=True,
            max_length=254,
            autocomplete="email",
            hint=N_(
                "We only use it to answer you. A personal address is safer than a work one: our reply will go there."
            ),
            purpose=N_("To reply to you."),
        ),
        # "nickname", not "given-name": the browser must not offer the legal name it knows.
        Field(
            "name",
            TEXT,
            N_("First name or pseudonym"),
            max_length=100,
            autocomplete="nickname",
            hint=N_("Optional: any name you would like us to use."),
            purpose=N_("To know what to call you. Your full name is not needed."),
        ),
        Field(
            "message",
            TEXTAREA,
            N_("Your message"),
            max_length=LONG_TEXT_MAX,
            hint=N_("Optional: say as much or as little as you wish (5000 characters at most)."),
            purpose=N_("To tell us, if you wish, what you are going through."),
        ),
        Field(
            "situation",
            SELECT,
            N_("Your situation"),
            choices=SITUATIONS,
            hint=N_("Optional: it helps us find a peer who knows your situation."),
            purpose=N_("To understand your context and find the most suitable peer for you."),
        ),
        Field(
            "preferred_language",
            SELECT,
            N_("Preferred language"),
            choices=PEER_LANGUAGES,
            purpose=N_("To put you in touch, where possible, with a peer who speaks your language."),
        ),
        Field(
            "other_language",
            TEXT,
            N_("Which other language?"),
            max_length=100,
            shown_when=("preferred_language", ("other",)),
            hint=N_("Only if you chose “Other” as your preferred language."),
            purpose=N_("To know your language when it is not in the list."),
            staff_label=N_("Other language"),
        ),
        Field(
            "contact",
            SELECT,
            N_("Preferred way to be contacted"),
            choices=CONTACT_WAYS,
            purpose=N_("To reach you in the way that suits you."),
        ),
        Field(
            "phone",
            TEL,
            N_("Phone number"),
            max_length=40,
            autocomplete="tel",
            required_when=("contact", ("phone", "video")),
            hint=N_("Needed if you prefer a phone or video call; include the country code."),
            purpose=N_("To call you, if you prefer a phone or video call."),
            errors=MappingProxyType(
                {
                    "required": N_(
                        "Please give a phone number so that we can call you, or choose to be contacted by email."
                    )
                }
            ),
        ),
        Field(
            "urgent",
            CHECKBOX,
            N_("This is urgent: please contact me as soon as possible"),
            # The crisis guidance again where a reader in danger looks: the numbers themselves,
            # as in the support page's box (docs/<lang>/support.md), not a pointer to them.
            hint=N_(
                "We still cannot answer at once. If you are in danger, call now: in Switzerland 144 "
                "(medical emergency) or 143 (someone to talk to, day and night); in the European Union "
                "112; elsewhere your local emergency number, or a helpline listed on findahelpline.com."
            ),
            purpose=N_(
                "To let the association know that your request is pressing. This still does not "
                "make it an emergency service."
            ),
            staff_label=N_("Marked as urgent"),
        ),
        _consent(
            N_(
                "I agree that CoCreate Humanity uses these details only to answer my request, "
                "as the privacy policy explains."
            )
        ),
        LANG,
        HONEYPOT_FIELD,
    ),
)

FORMS = MappingProxyType({form.name: form for form in (VOLUNTEER, SUPPORT)})
