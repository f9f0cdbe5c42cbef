"""The contract as the dashboard reads it: event kinds with their vi/en labels and severity.

Public (no session needed): the labels are the same words every event already carries in its texts, and
the login page may show them. The dashboard loads this once at start instead of keeping its own copy.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from contract.kinds import Severity, Source, kinds_document
from contract.states import NODE_STATES, PHASES, STREAM_STATES


class KindOut(BaseModel):
    name: str
    vi: str
    en: str
    severity: Severity
    source: Source


class ContractOut(BaseModel):
    kinds: list[KindOut]
    phases: list[str]
    node_states: list[str]
    stream_states: list[str]


def contract_router() -> APIRouter:
    router = APIRouter()

    @router.get("/api/contract/kinds", response_model=ContractOut)
    def kinds(response: Response) -> ContractOut:
        response.headers["Cache-Control"] = "public, max-age=300"
        return ContractOut(
            kinds=[KindOut.model_validate(k) for k in kinds_document()],
            phases=list(PHASES),
            node_states=list(NODE_STATES),
            stream_states=list(STREAM_STATES),
        )

    return router
