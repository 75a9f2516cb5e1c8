"""Scheduling's authorization matrix: for every route and method, the resource and action and the roles
allowed. Enforced by werkplaats_shared.authorization.install_authorization; rendered in
docs/authorization.md."""

from __future__ import annotations

from werkplaats_shared.authorization import DEAD_LETTER_PERMISSIONS, PARTIES, Matrix, allow, public

ANY = PARTIES
COORDINATOR = ("coordinator",)
INSTITUTION = ("institution",)
ENTREPRENEUR = ("entrepreneur",)
COORDINATOR_OR_ENTREPRENEUR = ("coordinator", "entrepreneur")

MATRIX = Matrix("scheduling", [
    allow("contact", "read its own", "GET", "/contact", "contact.ContactItem", *COORDINATOR_OR_ENTREPRENEUR),
    allow("contact", "set", "PUT", "/contact", "contact.ContactItem", *COORDINATOR_OR_ENTREPRENEUR),
    allow("contact", "set many organisations' contacts at once, all or none", "PUT", "/contacts",
          "contacts.Contacts", "operator"),
    allow("webhook", "read its own", "GET", "/webhook", "webhook.WebhookItem", *ENTREPRENEUR),
    allow("webhook", "set", "PUT", "/webhook", "webhook.WebhookItem", *ENTREPRENEUR),
    allow("webhook", "delete", "DELETE", "/webhook", "webhook.WebhookItem", *ENTREPRENEUR),
    allow("availability", "read its own", "GET", "/availability", "calendars.AvailabilityItem", *ENTREPRENEUR),
    allow("availability", "set", "PUT", "/availability", "calendars.AvailabilityItem", *ENTREPRENEUR),
    allow("institution calendar", "read its own", "GET", "/institution-calendar",
          "calendars.InstitutionCalendarItem", *INSTITUTION),
    allow("institution calendar", "set", "PUT", "/institution-calendar", "calendars.InstitutionCalendarItem",
          *INSTITUTION),
    allow("calendar feed", "download its own", "GET", "/calendar.ics", "calendars.CalendarFeed", *ANY),
    allow("notice", "list", "GET", "/notices", "notices.Notices", *ANY),
    allow("match answer", "list its matches and answers", "GET", "/match-answers", "match_answers.MatchAnswers",
          *ENTREPRENEUR),
    allow("match answer", "accept or decline", "POST", "/match-answers/<match_id>", "match_answers.MatchAnswer",
          *ENTREPRENEUR),
    allow("notice", "read", "GET", "/notices/<notice_id>", "notices.NoticeItem", *ANY),
    allow("notice", "list its deliveries", "GET", "/notices/<notice_id>/deliveries", "notices.NoticeDeliveries",
          *ANY),
    allow("kickoff", "list", "GET", "/kickoffs", "kickoffs.Kickoffs", *ANY),
    allow("kickoff", "count its proposed ones per week", "GET", "/kickoffs/weeks", "kickoffs.KickoffWeeks", *ANY),
    allow("kickoff", "plan a batch's (queues a plan job)", "POST", "/kickoffs/plan", "kickoffs.KickoffPlan",
          *COORDINATOR),
    allow("kickoff", "read", "GET", "/kickoffs/<match_id>", "kickoffs.KickoffItem", *ANY),
    allow("kickoff", "move", "PATCH", "/kickoffs/<match_id>", "kickoffs.KickoffItem", *COORDINATOR),
    allow("kickoff", "agree to its proposed time", "POST", "/kickoffs/<match_id>/agreement",
          "kickoffs.KickoffAgreement", "entrepreneur", "institution"),
    allow("kickoff", "cancel", "POST", "/kickoffs/<match_id>/cancellation", "kickoffs.KickoffCancellation",
          *COORDINATOR),
    allow("workshop theme", "list", "GET", "/workshop-themes", "workshops.Themes", *ANY),
    allow("workshop programme", "list (a coordinator: its own; an entrepreneur: every open programme of every "
          "workspace, by design, so any firm can register interest, and the ones it registered for)", "GET",
          "/workshop-programmes", "workshops.Programmes", *COORDINATOR_OR_ENTREPRENEUR),
    allow("workshop programme", "create", "POST", "/workshop-programmes", "workshops.Programmes", *COORDINATOR),
    allow("workshop programme", "read (an entrepreneur: any open programme, by design, or one it registered "
          "for)", "GET", "/workshop-programmes/<programme_id>", "workshops.ProgrammeItem",
          *COORDINATOR_OR_ENTREPRENEUR),
    allow("workshop room", "list", "GET", "/workshop-programmes/<programme_id>/rooms", "workshops.Rooms",
          *COORDINATOR),
    allow("workshop room", "add", "POST", "/workshop-programmes/<programme_id>/rooms", "workshops.Rooms",
          *COORDINATOR),
    allow("workshop facilitator", "list", "GET", "/workshop-programmes/<programme_id>/facilitators",
          "workshops.Facilitators", *COORDINATOR),
    allow("workshop facilitator", "add", "POST", "/workshop-programmes/<programme_id>/facilitators",
          "workshops.Facilitators", *COORDINATOR),
    allow("workshop interest", "list", "GET", "/workshop-programmes/<programme_id>/interests",
          "workshops.Interests", *COORDINATOR_OR_ENTREPRENEUR),
    allow("workshop interest", "register", "POST", "/workshop-programmes/<programme_id>/interests",
          "workshops.Interests", *ENTREPRENEUR),
    allow("workshop programme", "plan (queues a plan job)", "POST", "/workshop-programmes/<programme_id>/plan",
          "workshops.PlanItem",
          *COORDINATOR),
    allow("workshop session", "move", "POST", "/workshop-programmes/<programme_id>/session-moves",
          "workshops.SessionMoves", *COORDINATOR),
    allow("workshop session", "list with seats", "GET", "/workshop-programmes/<programme_id>/sessions",
          "workshops.Sessions", *COORDINATOR),
    allow("workshop registration", "list", "GET", "/workshop-registrations", "workshops.Registrations",
          *COORDINATOR_OR_ENTREPRENEUR),
    allow("workshop registration", "cancel", "POST", "/workshop-registrations/<registration_id>/cancel",
          "workshops.CancelRegistration", *COORDINATOR_OR_ENTREPRENEUR),
    allow("workshop registration", "move to another session of its theme", "POST",
          "/workshop-registrations/<registration_id>/move", "workshops.MoveRegistration", *COORDINATOR),
    allow("plan job", "list its own", "GET", "/plan-jobs", "plan_jobs.PlanJobs", *COORDINATOR),
    allow("plan job", "follow its own", "GET", "/plan-jobs/<job_id>", "plan_jobs.PlanJobItem", *COORDINATOR),
    allow("plan job", "cancel its own", "POST", "/plan-jobs/<job_id>/cancel", "plan_jobs.PlanJobCancel",
          *COORDINATOR),
    allow("reach", "count its workshops given and their participants", "GET", "/reach", "reach.Reach",
          *COORDINATOR),
    *DEAD_LETTER_PERMISSIONS,
], [
    public("GET", "/responses/<token>", "responses.ResponseLink",
           "a match notice's accept/decline link: the signed token is the credential"),
    public("POST", "/responses/<token>", "responses.ResponseLink",
           "a match notice's accept/decline link: the signed token is the credential"),
])
