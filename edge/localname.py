"""Names a technician gives per language: a plain string, or `{vi: ..., en: ...}`.

Operators read the dashboard in Vietnamese or English; a line's direction named "về phía phà / towards the
ferry" puts Vietnamese into the English view. Per-language names keep each view in its language. Events
keep the plain `direction_name` (the Vietnamese form) for readers that know nothing else, and add
`direction_name_vi` / `direction_name_en` beside it. Only pydantic here, so config and rules both import it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from common.yamlconf import Strict


class LocalName(Strict):
    """A name per language, `{vi: "về phía phà", en: "towards the ferry"}`: an English screen then shows no
    Vietnamese. Either may be left out; the other stands in for it."""

    vi: str | None = Field(default=None, min_length=1, max_length=64, description="Vietnamese name")
    en: str | None = Field(default=None, min_length=1, max_length=64, description="English name")

    @model_validator(mode="after")
    def _one_at_least(self) -> LocalName:
        if self.vi is None and self.en is None:
            raise ValueError("give the name in at least one of 'vi' and 'en'")
        return self


Name = Annotated[str, Field(min_length=1, max_length=64)] | LocalName


def name_forms(name: Name) -> dict[str, str]:
    """`{"": plain, "vi": ..., "en": ...}` of a configured name: the plain form is the Vietnamese one (or
    the only one given); a plain string has only the plain form."""
    if isinstance(name, str):
        return {"": name}
    plain = name.vi or name.en or ""
    return {"": plain, "vi": name.vi or plain, "en": name.en or plain}


def name_label(name: Name) -> str:
    """One line for drawings and summaries: "vi / en", or the name as given."""
    forms = name_forms(name)
    return " / ".join(dict.fromkeys(v for k, v in forms.items() if k)) or forms[""]
