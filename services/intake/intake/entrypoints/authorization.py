"""Intake's authorization matrix: for every route and method, the resource and action and the roles
allowed. Enforced by werkplaats_shared.authorization.install_authorization; rendered in
docs/authorization.md."""

from __future__ import annotations

from werkplaats_shared.authorization import DEAD_LETTER_PERMISSIONS, PARTIES, Matrix, allow, public

ANY = PARTIES
COORDINATOR = ("coordinator",)
INSTITUTION = ("institution",)
ENTREPRENEUR = ("entrepreneur",)

MATRIX = Matrix("intake", [
    allow("organisation", "read its own", "GET", "/me", "me.Me", *ANY),
    allow("workspace", "list", "GET", "/workspaces", "workspaces.Workspaces", *ANY),
    allow("workspace", "create", "POST", "/workspaces", "workspaces.Workspaces", *COORDINATOR),
    allow("workspace", "read", "GET", "/workspaces/<workspace_id>", "workspaces.WorkspaceItem", *ANY),
    allow("firm", "read its own profile", "GET", "/firm", "firm.Firm", *ENTREPRENEUR),
    allow("firm", "register its profile", "POST", "/firm", "firm.Firm", *ENTREPRENEUR),
    allow("firm", "update its profile", "PATCH", "/firm", "firm.Firm", *ENTREPRENEUR),
    allow("institution", "read its own profile", "GET", "/institution", "institution.Institution", *INSTITUTION),
    allow("institution", "update its profile", "PATCH", "/institution", "institution.Institution", *INSTITUTION),
    allow("capacity", "list", "GET", "/capacity", "capacity.Capacities", *ANY),
    allow("capacity", "register", "POST", "/capacity", "capacity.Capacities", *INSTITUTION),
    allow("capacity", "read", "GET", "/capacity/<capacity_id>", "capacity.CapacityItem", *ANY),
    allow("team", "list", "GET", "/teams", "teams.Teams", *ANY),
    allow("team", "register", "POST", "/teams", "teams.Teams", *INSTITUTION),
    allow("team", "read", "GET", "/teams/<team_id>", "teams.TeamItem", *ANY),
    allow("team", "update", "PATCH", "/teams/<team_id>", "teams.TeamItem", *INSTITUTION),
    allow("assignment", "list", "GET", "/assignments", "assignments.Assignments", *ANY),
    allow("assignment", "submit", "POST", "/assignments", "assignments.Assignments", *ENTREPRENEUR),
    allow("assignment", "read", "GET", "/assignments/<assignment_id>", "assignments.AssignmentItem", *ANY),
    allow("assignment", "update", "PATCH", "/assignments/<assignment_id>", "assignments.AssignmentItem",
          *ENTREPRENEUR),
    allow("assignment", "withdraw", "POST", "/assignments/<assignment_id>/withdraw",
          "assignments.AssignmentWithdrawal", "entrepreneur", "coordinator"),
    allow("batch", "list", "GET", "/batches", "batches.Batches", *COORDINATOR),
    allow("batch", "submit", "POST", "/batches", "batches.Batches", *COORDINATOR),
    allow("batch", "read", "GET", "/batches/<batch_id>", "batches.BatchItem", *COORDINATOR),
    allow("batch", "export as CSV", "GET", "/batches/<batch_id>/export.csv", "batch_exports.export_csv",
          *COORDINATOR),
    allow("batch", "export as XLSX", "GET", "/batches/<batch_id>/export.xlsx", "batch_exports.export_xlsx",
          *COORDINATOR),
    allow("referral", "list", "GET", "/referrals", "referrals.Referrals", *ANY),
    allow("referral scheme", "list", "GET", "/referral-schemes", "referral_schemes.Schemes", *ANY),
    allow("referral scheme", "create or update", "PUT", "/referral-schemes/<code>", "referral_schemes.SchemeItem",
          *COORDINATOR),
    allow("handover", "list", "GET", "/handovers", "handovers.Handovers", *COORDINATOR),
    allow("handover", "hand over", "POST", "/handovers", "handovers.Handovers", *COORDINATOR),
    allow("assignment", "import", "POST", "/imports/assignments", "imports.import_assignments", *ENTREPRENEUR),
    allow("assignment", "download the CSV import template", "GET", "/imports/assignments/template.csv",
          "imports.assignments_template_csv", *ANY),
    allow("assignment", "download the XLSX import template", "GET", "/imports/assignments/template.xlsx",
          "imports.assignments_template_xlsx", *ANY),
    allow("team", "import", "POST", "/imports/teams", "imports.import_teams", *INSTITUTION),
    allow("team", "download the CSV import template", "GET", "/imports/teams/template.csv",
          "imports.teams_template_csv", *ANY),
    allow("team", "download the XLSX import template", "GET", "/imports/teams/template.xlsx",
          "imports.teams_template_xlsx", *ANY),
    allow("capacity", "import", "POST", "/imports/capacity", "imports.import_capacity", *INSTITUTION),
    allow("capacity", "download the CSV import template", "GET", "/imports/capacity/template.csv",
          "imports.capacity_template_csv", *ANY),
    allow("capacity", "download the XLSX import template", "GET", "/imports/capacity/template.xlsx",
          "imports.capacity_template_xlsx", *ANY),
    allow("coordinator account", "list", "GET", "/accounts", "accounts.Accounts", *COORDINATOR),
    allow("coordinator account", "create", "POST", "/accounts", "accounts.Accounts", *COORDINATOR),
    allow("coordinator account", "read", "GET", "/accounts/<account_id>", "accounts.AccountItem", *COORDINATOR),
    allow("coordinator account", "disable", "POST", "/accounts/<account_id>/disable", "accounts.AccountDisable",
          *COORDINATOR),
    allow("API key", "list", "GET", "/api-keys", "api_keys.Keys", *ANY),
    allow("API key", "issue", "POST", "/api-keys", "api_keys.Keys", *ANY),
    allow("API key", "read", "GET", "/api-keys/<key_id>", "api_keys.KeyItem", *ANY),
    allow("API key", "rotate", "POST", "/api-keys/<key_id>/rotate", "api_keys.KeyRotation", *ANY),
    allow("API key", "revoke", "POST", "/api-keys/<key_id>/revoke", "api_keys.KeyRevocation", *ANY),
    allow("erasure", "list its own requests", "GET", "/privacy/erasures", "privacy.Erasures", *ANY),
    allow("erasure", "erase personal data", "POST", "/privacy/erasures", "privacy.Erasures", *ANY),
    *DEAD_LETTER_PERMISSIONS,
], [
    public("POST", "/tokens/<audience>", "tokens.Tokens",
           "log in: a coordinator account's e-mail and password are the credential"),
])
