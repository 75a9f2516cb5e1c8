"""Matching's authorization matrix: for every route and method, the resource and action and the roles
allowed. Enforced by werkplaats_shared.authorization.install_authorization; rendered in
docs/authorization.md."""

from __future__ import annotations

from werkplaats_shared.authorization import DEAD_LETTER_PERMISSIONS, PARTIES, Matrix, allow

ANY = PARTIES
COORDINATOR = ("coordinator",)

MATRIX = Matrix("matching", [
    allow("policy", "list", "GET", "/policies", "policies.Policies", *ANY),
    allow("run", "list", "GET", "/runs", "runs.Runs", *COORDINATOR),
    allow("reach", "count a workspace's assignments served and teams placed (its own rounds)", "GET", "/reach",
          "reach.Reach", *COORDINATOR),
    allow("run", "compare two", "GET", "/runs/compare", "runs.RunComparison", *COORDINATOR),
    allow("run", "read", "GET", "/runs/<run_id>", "runs.RunItem", *COORDINATOR),
    allow("run", "explain", "GET", "/runs/<run_id>/explanations", "runs.RunExplanations", *COORDINATOR),
    allow("run", "read a page of its result", "GET", "/runs/<run_id>/results", "runs.RunResults", *COORDINATOR),
    allow("run", "cancel", "POST", "/runs/<run_id>/cancel", "runs.RunCancel", *COORDINATOR),
    allow("run", "publish", "POST", "/runs/<run_id>/publish", "runs.RunPublish", *COORDINATOR),
    allow("run", "export the model as LP", "GET", "/runs/<run_id>/model.lp", "runs.RunModelLP", *COORDINATOR),
    allow("run", "export the model as MPS", "GET", "/runs/<run_id>/model.mps", "runs.RunModelMPS", *COORDINATOR),
    allow("batch run", "list", "GET", "/batches/<batch_id>/runs", "batches.BatchRuns", *COORDINATOR),
    allow("batch run", "request a re-run", "POST", "/batches/<batch_id>/runs", "batches.BatchRuns", *COORDINATOR),
    allow("pin", "list", "GET", "/batches/<batch_id>/pins", "batches.Pins", *COORDINATOR),
    allow("pin", "add", "POST", "/batches/<batch_id>/pins", "batches.Pins", *COORDINATOR),
    allow("pin", "remove", "DELETE", "/batches/<batch_id>/pins/<control_id>", "batches.PinsItem", *COORDINATOR),
    allow("forbid", "list", "GET", "/batches/<batch_id>/forbids", "batches.Forbids", *COORDINATOR),
    allow("forbid", "add", "POST", "/batches/<batch_id>/forbids", "batches.Forbids", *COORDINATOR),
    allow("forbid", "remove", "DELETE", "/batches/<batch_id>/forbids/<control_id>", "batches.ForbidsItem",
          *COORDINATOR),
    allow("batch audit trail", "read", "GET", "/batches/<batch_id>/audit", "batches.BatchAudit", *COORDINATOR),
    allow("match", "list", "GET", "/matches", "matches.Matches", *ANY),
    *DEAD_LETTER_PERMISSIONS,
])
