"""One Flask-WTF form class per form of the portal. Labels and descriptions are English texts translated at
render time (lazy), so one form class serves both languages. Every form carries a CSRF token."""

from __future__ import annotations

from typing import Any

import wtforms
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from .i18n import gettext


class LazyText(str):
    """A text translated when it is shown, not when the form class is defined."""

    __slots__ = ()

    def __str__(self) -> str:
        return gettext(str.__str__(self))

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(str(self)))


def _l(text: str) -> Any:
    return LazyText(text)


REQUIRED = _l("This field is required.")
VALID_EMAIL = _l("Enter a valid e-mail address.")
LEVEL_CHOICES = [("MBO", "MBO"), ("HBO", "HBO"), ("WO", "WO")]


def _as_objects(value: Any) -> Any:
    if value is None or callable(value) or isinstance(value, dict):
        return value
    return [c if isinstance(c, SelectChoice) else SelectChoice(str(c[0]), str(c[1])) for c in value]


_CHOICES = wtforms.SelectField.choices  # WTForms' own property, which stores and resolves them


class ChoicesAsObjects:
    """Choices given as (value, label) pairs become WTForms' SelectChoice objects (its tuples are deprecated)."""

    def __init__(self, *args: Any, choices: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, choices=_as_objects(choices), **kwargs)  # type: ignore[call-arg]

    choices = property(lambda self: _CHOICES.fget(self),  # type: ignore[misc]
                       lambda self, value: _CHOICES.fset(self, _as_objects(value)))  # type: ignore[misc]


class SelectField(ChoicesAsObjects, wtforms.SelectField):
    pass


class RadioField(ChoicesAsObjects, wtforms.RadioField):
    pass


class MultiCheckboxField(ChoicesAsObjects, wtforms.SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


# ---- signing in ------------------------------------------------------------------------------


class SignInForm(FlaskForm):
    email = EmailField(_l("E-mail address"), validators=[InputRequired(REQUIRED), Email(VALID_EMAIL)])
    password = PasswordField(_l("Password"), validators=[InputRequired(REQUIRED)])


class SignInLinkForm(FlaskForm):
    email = EmailField(_l("E-mail address"), validators=[InputRequired(REQUIRED), Email(VALID_EMAIL)])


class SignUpForm(FlaskForm):
    organisation_name = StringField(_l("Name of your firm"), validators=[InputRequired(REQUIRED), Length(max=200)])
    email = EmailField(_l("E-mail address"), validators=[InputRequired(REQUIRED), Email(VALID_EMAIL)])
    password = PasswordField(_l("Password"), validators=[
        InputRequired(REQUIRED), Length(min=12, max=128, message=_l("Use 12 to 128 characters."))])
    password_again = PasswordField(_l("Password again"), validators=[
        InputRequired(REQUIRED), EqualTo("password", message=_l("The two passwords differ."))])


class InvitationForm(FlaskForm):
    password = PasswordField(_l("Choose a password"), validators=[
        InputRequired(REQUIRED), Length(min=12, max=128, message=_l("Use 12 to 128 characters."))])
    password_again = PasswordField(_l("Password again"), validators=[
        InputRequired(REQUIRED), EqualTo("password", message=_l("The two passwords differ."))])


class LanguageForm(FlaskForm):
    language = SelectField(_l("Language"), choices=[("nl", "Nederlands"), ("en", "English")])


class ActionForm(FlaskForm):
    """A button that changes something (sign out, withdraw, cancel): only the CSRF token."""


class InviteForm(FlaskForm):
    email = EmailField(_l("E-mail address of your colleague"),
                       validators=[InputRequired(REQUIRED), Email(VALID_EMAIL)])
    language = SelectField(_l("Language of the invitation"), choices=[("nl", "Nederlands"), ("en", "English")])


# ---- entrepreneurs ---------------------------------------------------------------------------


class FirmForm(FlaskForm):
    kvk_number = StringField(_l("KvK number"), validators=[
        InputRequired(REQUIRED), Regexp(r"^\d{8}$", message=_l("A KvK number has 8 digits."))])
    sector = StringField(_l("Sector"), validators=[InputRequired(REQUIRED), Length(max=100)])
    size_class = RadioField(_l("Size of the firm"), validators=[InputRequired(REQUIRED)])
    municipality = SelectField(_l("Municipality"), validators=[InputRequired(REQUIRED)])
    max_concurrent_teams = IntegerField(_l("Most student teams at once (optional)"), validators=[
        Optional(), NumberRange(min=1, max=100, message=_l("A number from 1 to 100."))])


class AssignmentForm(FlaskForm):
    # one key per filled-in form: sending it twice (a double click, a reload) creates one assignment
    submission = HiddenField()
    title = StringField(_l("Title"), validators=[InputRequired(REQUIRED), Length(max=200)])
    description = TextAreaField(_l("What should the students do?"), validators=[Length(max=5000)])
    theme = SelectField(_l("Theme"), validators=[InputRequired(REQUIRED)])
    kind = RadioField(_l("Kind of work"), validators=[InputRequired(REQUIRED)])
    period = SelectField(_l("Period"), validators=[InputRequired(REQUIRED)])
    accepted_levels = MultiCheckboxField(_l("Levels you accept"), choices=LEVEL_CHOICES,
                                         validators=[DataRequired(_l("Choose at least one level."))])
    required_skills = StringField(_l("Skills the team must have"), validators=[Length(max=600)])
    nice_to_have_skills = StringField(_l("Skills that would be nice"), validators=[Length(max=600)])
    mode = RadioField(_l("Where will the team work?"), validators=[InputRequired(REQUIRED)])
    max_teams = IntegerField(_l("How many teams?"), default=1, validators=[
        InputRequired(REQUIRED), NumberRange(min=1, max=10, message=_l("A number from 1 to 10."))])


class KickoffAgreementForm(FlaskForm):
    """Agree to a kickoff meeting's proposed time: the time as the page showed it (its sequence), and the CSRF
    token."""

    sequence = HiddenField(validators=[InputRequired(), Regexp(r"^\d{1,6}$")])


class AnswerForm(FlaskForm):
    decision = RadioField(_l("Your answer"), validators=[InputRequired(REQUIRED)])


class ContactForm(FlaskForm):
    email = EmailField(_l("E-mail address for notices"),
                       validators=[InputRequired(REQUIRED), Email(VALID_EMAIL)])
    language = SelectField(_l("Language of notices"), choices=[("nl", "Nederlands"), ("en", "English")])


class AvailabilityForm(FlaskForm):
    weekdays = MultiCheckboxField(_l("Days you can meet"), validators=[DataRequired(_l("Choose at least one day."))])
    starts_at = TimeField(_l("From"), validators=[InputRequired(REQUIRED)])
    ends_at = TimeField(_l("Until"), validators=[InputRequired(REQUIRED)])
    venue = RadioField(_l("Where do you prefer to meet?"), validators=[InputRequired(REQUIRED)])


# ---- institutions ----------------------------------------------------------------------------


class CapacityForm(FlaskForm):
    programme = StringField(_l("Programme"), validators=[InputRequired(REQUIRED), Length(max=100)])
    period = SelectField(_l("Period"), validators=[InputRequired(REQUIRED)])
    level = RadioField(_l("Level"), choices=LEVEL_CHOICES, validators=[InputRequired(REQUIRED)])
    teams = IntegerField(_l("Number of teams"), validators=[
        InputRequired(REQUIRED), NumberRange(min=1, max=500, message=_l("A number from 1 to 500."))])
    team_size_min = IntegerField(_l("Smallest team (students)"), validators=[
        InputRequired(REQUIRED), NumberRange(min=1, max=12, message=_l("A number from 1 to 12."))])
    team_size_max = IntegerField(_l("Largest team (students)"), validators=[
        InputRequired(REQUIRED), NumberRange(min=1, max=12, message=_l("A number from 1 to 12."))])
    supervision_hours = IntegerField(_l("Supervision hours of lecturers"), validators=[
        InputRequired(REQUIRED), NumberRange(min=0, max=10000, message=_l("A number from 0 to 10,000."))])
    skills = StringField(_l("Skills on offer"), validators=[Length(max=600)])


class TeamForm(FlaskForm):
    code = StringField(_l("Team code"), validators=[InputRequired(REQUIRED), Length(max=40)])
    level = RadioField(_l("Level"), choices=LEVEL_CHOICES, validators=[InputRequired(REQUIRED)])
    size = IntegerField(_l("Number of students"), validators=[
        InputRequired(REQUIRED), NumberRange(min=1, max=12, message=_l("A number from 1 to 12."))])
    period = SelectField(_l("Period"), validators=[InputRequired(REQUIRED)])
    skills = StringField(_l("Skills"), validators=[Length(max=600)])
    travel_limit_km = IntegerField(_l("Furthest travel (km, optional)"), validators=[
        Optional(), NumberRange(min=0, max=500, message=_l("A number from 0 to 500."))])
    remote_allowed = BooleanField(_l("The team may work remotely"), default=True)


class TeamEditForm(FlaskForm):
    """What can change of a registered team: its code, its size and its skills."""

    code = StringField(_l("Team code"), validators=[InputRequired(REQUIRED), Length(max=40)])
    size = IntegerField(_l("Number of students"), validators=[
        InputRequired(REQUIRED), NumberRange(min=1, max=12, message=_l("A number from 1 to 12."))])
    skills = StringField(_l("Skills"), validators=[Length(max=600)])


class ImportForm(FlaskForm):
    period = SelectField(_l("Workspace and period of these teams"), validators=[InputRequired(REQUIRED)])
    file = FileField(_l("File with teams (CSV or Excel)"), validators=[
        FileRequired(REQUIRED), FileAllowed(["csv", "xlsx"], _l("Choose a .csv or .xlsx file."))])


class CalendarForm(FlaskForm):
    region = RadioField(_l("School-holiday region"), validators=[InputRequired(REQUIRED)])
    extra_weeks = MultiCheckboxField(_l("Weeks many schools take off"))
    non_teaching_weeks = StringField(_l("Weeks without teaching"), validators=[Length(max=600)])


class WorkshopInterestForm(FlaskForm):
    """Interest in one theme of a workshop programme: the days the firm can come, where, and online or not."""

    theme = SelectField(_l("Theme"), validators=[InputRequired(REQUIRED)])
    available_days = MultiCheckboxField(_l("Days you can come"),
                                        validators=[DataRequired(_l("Choose at least one day."))])
    locations = MultiCheckboxField(_l("Places you can come to"))
    online_ok = BooleanField(_l("An online session is fine too"))


def skills_list(text: str | None) -> list[str]:
    """Skills typed as a comma-separated list: trimmed, lower-case, each once, in the typed order."""
    seen: list[str] = []
    for part in (text or "").split(","):
        skill = part.strip().lower()
        if skill and skill not in seen:
            seen.append(skill)
    return seen




# ---- coordinators ----------------------------------------------------------------------------


class RoundChoiceForm(FlaskForm):
    """The workspace and period of a new round (a GET form: it only chooses what the next form offers)."""

    class Meta:
        csrf = False

    period = SelectField(_l("Workspace and period"), validators=[InputRequired(REQUIRED)])


class RoundForm(FlaskForm):
    period = SelectField(_l("Workspace and period"), validators=[InputRequired(REQUIRED)])
    policy = RadioField(_l("How to match"), validators=[InputRequired(REQUIRED)])
    assignment_ids = MultiCheckboxField(_l("Assignments in this round"),
                                        validators=[DataRequired(_l("Choose at least one assignment."))])
    auto_publish = BooleanField(_l("Publish the matches as soon as they are found"), default=False)


class ForbidForm(FlaskForm):
    pair = SelectField(_l("Pair"), validators=[InputRequired(REQUIRED)])
    reason = StringField(_l("Reason"), validators=[InputRequired(REQUIRED), Length(max=500)])


class PinForm(FlaskForm):
    assignment = SelectField(_l("Assignment"), validators=[InputRequired(REQUIRED)])
    team = SelectField(_l("Team"), validators=[InputRequired(REQUIRED)])
    reason = StringField(_l("Reason"), validators=[InputRequired(REQUIRED), Length(max=500)])


class FindPairForm(FlaskForm):
    """Text to find any assignment and team of the round (not only the result page's), read from the query
    string (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    find_assignment = StringField(_l("Assignment: text in its title or its firm's name"),
                                  validators=[Optional(), Length(max=100)])
    find_team = StringField(_l("Team: text in its code or its institution's name"),
                            validators=[Optional(), Length(max=100)])


class FoundPairForm(FlaskForm):
    assignment = SelectField(_l("Assignment"), validators=[InputRequired(REQUIRED)])
    team = SelectField(_l("Team"), validators=[InputRequired(REQUIRED)])
    reason = StringField(_l("Reason"), validators=[InputRequired(REQUIRED), Length(max=500)])


class ReleaseForm(FlaskForm):
    pair = SelectField(_l("Accepted pair"), validators=[InputRequired(REQUIRED)])
    reason = StringField(_l("Reason"), validators=[InputRequired(REQUIRED), Length(max=500)])


class ResultFilterForm(FlaskForm):
    """The round's result table: what to show, filters and order; read from the query string (no CSRF: it
    changes nothing)."""

    class Meta:
        csrf = False

    show = SelectField(_l("Show"), default="matches")
    q = StringField(_l("Assignment or firm contains"), validators=[Optional(), Length(max=100)])
    # their choices come with the result (matching checks the values)
    level = SelectField(_l("Level"), default="", validate_choice=False, validators=[Optional(), Length(max=10)])
    institution = SelectField(_l("Institution"), default="", validate_choice=False,
                              validators=[Optional(), Length(max=36)])
    answer = SelectField(_l("Firm's answer"), default="")
    min_fit = wtforms.DecimalField(_l("Fit at least"), places=None,
                                   validators=[Optional(), NumberRange(min=0, max=1000)])
    max_fit = wtforms.DecimalField(_l("Fit at most"), places=None,
                                   validators=[Optional(), NumberRange(min=0, max=1000)])
    sort = SelectField(_l("Order"), default="fit_desc")
    size = SelectField(_l("Rows per page"), default="50",
                       choices=[("5", "5"), ("10", "10"), ("25", "25"), ("50", "50"), ("100", "100")])


class CompareChoiceForm(FlaskForm):
    class Meta:
        csrf = False

    a = SelectField(_l("First run"))
    b = SelectField(_l("Second run"))
