"""schemathesis hooks for scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

docs/openapi.yaml lists, under `x-settlegate-rules`, the few checks the gateway makes that JSON Schema cannot say:
sums across fields, a date against today, a body field against the path. schemathesis generates requests from the
schemas alone, so a generated *valid* (positive) request would break them by chance, and "valid data is refused"
would be reported for requests that the document itself says are invalid. `map_case` makes every positive case meet
those rules too, by the smallest change that keeps it valid against its schema; one function per rule, named by
the rule's id. Negative cases are left as generated. Nothing here weakens a check: the document's promise is
"schema + x-settlegate-rules => never 400", and that is what the positive cases then test.

The cardholder import body is NDJSON text: it is sent as the generated string (`text/plain`'s serializer). The
reconciliation check's NDJSON body is text too, whose lines must each be one `ReconciliationCheckLine`: a positive
case gets a few such lines.
"""

from __future__ import annotations

import datetime
from typing import Any

import schemathesis
from schemathesis import GenerationMode

MAX_FEN = 2**53 - 1
# The gateway's `timezone` in scripts/schemathesis.sh is Asia/Shanghai: UTC+8, no daylight saving time.
GATEWAY_TZ = datetime.timezone(datetime.timedelta(hours=8))

SETTLE = ("POST", "/v1/settlements")
QUOTE = ("POST", "/v1/settlements/quote")
ELIGIBILITY = ("POST", "/v1/eligibility")
PUT_CARDHOLDER = ("PUT", "/admin/v1/cardholders/{card_id}")
PUBLISH_RULESET = ("POST", "/admin/v1/rulesets")
CHECK_TOTALS = ("POST", "/v1/reconciliation/check")
CHECK_DETAILS = ("POST", "/v1/reconciliation/check/details")
# scripts/schemathesis.sh runs the /v1/ paths with this hospital's certificate
HOSPITAL = "H0001"
CREATE_CLEARING = ("POST", "/admin/v1/clearings")
CONTRIBUTE = ("POST", "/admin/v1/pools/{program}/contributions")
REPORT = ("GET", "/admin/v1/reports/relief")
PREVIEW = ("POST", "/admin/v1/rulesets/preview")
MAX_RANGE_DAYS = 366
PAY_CLEARING = ("POST", "/admin/v1/clearings/{clearing_id}/paid")

schemathesis.serializer.alias(["application/x-ndjson", "application/ndjson", "application/jsonl"], "text/plain")


def integer_literals(value: Any) -> Any:
    """`integer-literals`: JSON Schema counts `2291.0` as an integer; the gateway wants `2291`."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_FEN:
        return int(value)
    if isinstance(value, dict):
        return {k: integer_literals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integer_literals(v) for v in value]
    return value


def visit_date_at_most_tomorrow(body: dict) -> None:
    visit = body.get("visit")
    if not isinstance(visit, dict) or not isinstance(visit.get("date"), str):
        return
    today = datetime.datetime.now(GATEWAY_TZ).date()
    try:
        date = datetime.date.fromisoformat(visit["date"])
    except ValueError:
        return
    if date > today + datetime.timedelta(days=1):
        visit["date"] = today.isoformat()


def buckets_add_up(body: dict) -> None:
    amounts = body.get("amounts")
    names = ("in_scope_fen", "pre_self_pay_fen", "over_limit_fen", "self_pay_fen")
    if not isinstance(amounts, dict) or not all(isinstance(amounts.get(n), int) for n in names):
        return
    if sum(amounts[n] for n in names) > MAX_FEN:
        for n in names:
            amounts[n] //= 4
    amounts["total_fen"] = sum(amounts[n] for n in names)


def insurance_within_scope(body: dict) -> None:
    insurance, amounts = body.get("insurance"), body.get("amounts")
    if not isinstance(insurance, dict) or not isinstance(amounts, dict):
        return
    room = amounts.get("in_scope_fen")
    if not isinstance(room, int):
        return
    for name in ("basic_fen", "critical_illness_fen", "other_fen"):
        if isinstance(insurance.get(name), int):
            insurance[name] = min(insurance[name], room)
            room -= insurance[name]


def period_not_after_this_month(body: dict) -> None:
    period = body.get("period")
    if not isinstance(period, str):
        return
    this_month = datetime.datetime.now(GATEWAY_TZ).date().strftime("%Y-%m")
    # a valid period is `YYYY-MM`, so it compares as a string
    if period > this_month:
        body["period"] = this_month


def paid_at_at_most_tomorrow(body: dict) -> None:
    paid_at = body.get("paid_at")
    if not isinstance(paid_at, str):
        return
    today = datetime.datetime.now(GATEWAY_TZ).date()
    try:
        date = datetime.date.fromisoformat(paid_at)
    except ValueError:
        return
    if date > today + datetime.timedelta(days=1):
        body["paid_at"] = today.isoformat()


def budget_within_2_pow_53(body: dict) -> None:
    """`budget-within-2-pow-53`: the run's donations together stay far below 2^53 fen."""
    if isinstance(body.get("amount_fen"), int) and body["amount_fen"] > 10**9:
        body["amount_fen"] = body["amount_fen"] % 10**9 + 1


def range_in_order(values: dict) -> None:
    """`report-range-in-order`, `period-in-order`: `from <= to`, at most 366 days counting both."""
    try:
        start = datetime.date.fromisoformat(values["from"])
        end = datetime.date.fromisoformat(values["to"])
    except (KeyError, TypeError, ValueError):
        return
    if end < start:
        start, end = end, start
    if (end - start).days >= MAX_RANGE_DAYS:
        end = start + datetime.timedelta(days=MAX_RANGE_DAYS - 1)
    values["from"], values["to"] = start.isoformat(), end.isoformat()


def card_id_matches_path(body: dict, path_parameters: dict) -> None:
    if isinstance(path_parameters.get("card_id"), str) and "card_id" in body:
        body["card_id"] = path_parameters["card_id"]


def validity_in_order(body: dict) -> None:
    start, end = body.get("valid_from"), body.get("valid_until")
    if isinstance(start, str) and isinstance(end, str) and start > end:
        body["valid_from"], body["valid_until"] = end, start


def unique_program_ids(body: dict) -> None:
    programs = body.get("programs")
    if not isinstance(programs, list):
        return
    seen: set = set()
    kept = []
    for p in programs:
        key = p.get("id") if isinstance(p, dict) else None
        if key in seen:
            continue
        seen.add(key)
        kept.append(p)
    body["programs"] = kept


def hospital_id_of_the_caller(values: Any) -> None:
    """`hospital-id-of-the-caller`: a hospital may name only itself (403 otherwise)."""
    if isinstance(values, dict) and isinstance(values.get("hospital_id"), str):
        values["hospital_id"] = HOSPITAL


def ndjson_check_lines(case) -> None:
    """`ndjson-check-lines`: the body is text whose schema allows anything; a valid one is lines of
    `ReconciliationCheckLine`. A few lines, varied by what was generated, some repeated or negative."""
    seed = len(str(case.body))
    lines = []
    for i in range(seed % 5):
        event = "reversed" if i % 2 else "settled"
        sign = -1 if event == "reversed" else 1
        total = sign * ((seed * 37 + i) % MAX_FEN)
        lines.append(
            '{"event":"%s","hospital_settlement_id":"ST-%d","total_fen":%d,"relief_fen":%d,"patient_fen":%d}'
            % (event, i // 2, total, 0, total)
        )
    case.body = "\n".join(lines) + ("\n" if lines else "")


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return case
    operation = (case.operation.method.upper(), case.operation.path)
    if operation == REPORT and isinstance(case.query, dict):
        range_in_order(case.query)
        return case
    if operation == CHECK_DETAILS:
        hospital_id_of_the_caller(case.query)
        ndjson_check_lines(case)
        return case
    if not isinstance(case.body, (dict, list)):
        return case
    body = integer_literals(case.body)
    if isinstance(body, dict):
        if operation in (SETTLE, QUOTE, ELIGIBILITY):
            visit_date_at_most_tomorrow(body)
        if operation in (SETTLE, QUOTE):
            buckets_add_up(body)
            insurance_within_scope(body)
        if operation == PUT_CARDHOLDER:
            card_id_matches_path(body, case.path_parameters or {})
            validity_in_order(body)
        if operation == PUBLISH_RULESET:
            unique_program_ids(body)

        if operation == CHECK_TOTALS:
            hospital_id_of_the_caller(body)
        if operation == CREATE_CLEARING:
            period_not_after_this_month(body)
        if operation == PAY_CLEARING:
            paid_at_at_most_tomorrow(body)
        if operation == CONTRIBUTE:
            budget_within_2_pow_53(body)

        if operation == PREVIEW:
            range_in_order(body)
            if isinstance(body.get("ruleset"), dict):
                unique_program_ids(body["ruleset"])
    case.body = body  # always: `2291.0 == 2291` in Python, so a comparison would miss the literal fix
    return case
