"""The operator API for dead letters, the same in every service (see deadletters.py):

- ``GET /dead-letters`` (``?queue=``): the dead letters of this service's queues, without bodies, and a
  count per queue;
- ``GET /dead-letters/{message_id}``: one dead letter with its headers and body;
- ``POST /dead-letters/replays`` (``{"message_ids": [...]}`` or ``{"all": true}``, optional ``queue``): put
  them back into their original queue, each with an audit row naming the operator's key.

Only the ``operator`` role may use them (each service's authorization matrix).
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .auth import current_principal
from .deadletters import DeadLetterQueues, audit_writer, replays_table
from .http import Blueprint


class QueueArgs(Schema):
    class Meta:
        unknown = RAISE

    queue = fields.String(validate=validate.Length(min=1, max=200),
                          metadata={"description": "only this queue, e.g. matching.from-intake"})


class ReplayIn(Schema):
    class Meta:
        unknown = RAISE

    message_ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                              validate=validate.Length(min=1, max=1000),
                              metadata={"description": "the dead letters to replay"})
    all = fields.Boolean(load_default=False, metadata={"description": "replay every replayable dead letter"})
    queue = fields.String(validate=validate.Length(min=1, max=200),
                          metadata={"description": "only this queue, e.g. matching.from-intake"})

    @validates_schema
    def _one_of(self, data: dict[str, Any], **_: Any) -> None:
        if bool(data.get("message_ids")) == bool(data.get("all")):
            raise ValidationError("name the message_ids to replay, or set all to true (not both)",
                                  field_name="message_ids")


class DeadLetterOut(Schema):
    queue = fields.String(required=True)
    message_id = fields.String(required=True)
    type = fields.String(allow_none=True)
    reason = fields.String(required=True, metadata={"description": "why it was dead-lettered"})
    attempts = fields.Integer(allow_none=True)
    replayable = fields.Boolean(required=True, metadata={"description": "false for a message refused for "
                                                                            "its sender: never replayed"})


class DeadLetterDetailOut(DeadLetterOut):
    headers = fields.Dict(keys=fields.String(), values=fields.Raw())
    body = fields.Raw(metadata={"description": "the message body (JSON when it decodes)"})


class DeadLetterListOut(Schema):
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(),
                         metadata={"description": "dead letters per queue"})
    dead_letters = fields.List(fields.Nested(DeadLetterOut))


class RefusedOut(DeadLetterOut):
    refusal = fields.String(required=True)


class ReplayOut(Schema):
    replayed = fields.List(fields.Nested(DeadLetterOut))
    refused = fields.List(fields.Nested(RefusedOut))
    missing = fields.List(fields.String(), metadata={"description": "message ids with no dead letter"})


def dead_letter_blueprint(infra: Any) -> Blueprint:
    """``infra``: the service's werkplaats_shared.service.Infrastructure."""
    blp = Blueprint("dead_letters", __name__, url_prefix="/dead-letters",
                    description="Dead letters of this service's queues: see and replay (operators)")
    service = infra.settings.service
    namespace = infra.topology.namespace

    def short(name: str) -> str:
        return str(name).removeprefix(namespace)

    def summary(d: Any) -> dict[str, Any]:
        return {**d.summary(), "queue": short(d.queue)}

    def checked(dlqs: DeadLetterQueues, queue: str | None) -> None:
        try:
            dlqs.selected(queue)
        except ValueError as exc:
            abort(422, message=str(exc), errors=[{"field": "queue", "reason": str(exc)}])

    @blp.route("")
    class DeadLetters(MethodView):
        @blp.arguments(QueueArgs, location="query")
        @blp.response(200, DeadLetterListOut)
        def get(self, args: dict[str, Any]) -> Any:
            with infra.connection() as conn:
                dlqs = DeadLetterQueues(conn, infra.topology, service)
                checked(dlqs, args.get("queue"))
                letters = dlqs.browse(args.get("queue"))
                counts = {short(q): 0 for q in dlqs.selected(args.get("queue"))}
            for letter in letters:
                counts[short(letter.queue)] += 1
            return {"counts": counts, "dead_letters": [summary(d) for d in letters]}

    @blp.route("/<message_id>")
    class DeadLetterItem(MethodView):
        @blp.response(200, DeadLetterDetailOut)
        def get(self, message_id: str) -> Any:
            with infra.connection() as conn:
                found = DeadLetterQueues(conn, infra.topology, service).show(message_id)
            if found is None:
                abort(404, message="not found")
                return None
            return {**found.detail(), "queue": short(found.queue)}

    @blp.route("/replays")
    class DeadLetterReplays(MethodView):
        @blp.arguments(ReplayIn)
        @blp.response(200, ReplayOut)
        def post(self, data: dict[str, Any]) -> Any:
            principal = current_principal()
            record = audit_writer(infra.engine, replays_table(infra.outbox), f"operator:{principal.key_id}")
            with infra.connection() as conn:
                dlqs = DeadLetterQueues(conn, infra.topology, service)
                checked(dlqs, data.get("queue"))
                result = dlqs.replay(None if data.get("all") else data["message_ids"], record, data.get("queue"))
            return {"replayed": [summary(d) for d in result.replayed],
                    "refused": [{**summary(d), "refusal": why} for d, why in result.refused],
                    "missing": result.missing}

    return blp
