"""The report of a weight import: what happened to every key of a foreign state dict.

Shared by the official X-FM import (``official``) and the BEiT-v2 / RoBERTa initialisation
(``pretrained_vision``, ``text``): ``model_summary`` shows it, and tests assert on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImportReport:
    """What happened to every key of an imported state dict."""

    loaded: list[str] = field(default_factory=list)  # model keys filled from the file
    resized: list[str] = field(default_factory=list)  # subset of loaded that were interpolated
    skipped: dict[str, str] = field(default_factory=dict)  # official key -> reason
    unexpected: list[str] = field(default_factory=list)  # official keys with no place in this model
    missing: list[str] = field(default_factory=list)  # model keys left at their initial values
    initialised: dict[str, str] = field(default_factory=dict)  # model key the format never holds -> its documented start
    not_in_xfm: list[str] = field(default_factory=list)  # model keys of parts X-FM does not have (initial values)

    def summary(self) -> str:
        """One line per category, for logs."""
        return (
            f"loaded {len(self.loaded)} (resized {len(self.resized)}), skipped {len(self.skipped)}, "
            f"unexpected {len(self.unexpected)}, missing {len(self.missing)}, initialised {len(self.initialised)}, "
            f"not in X-FM {len(self.not_in_xfm)}"
        )

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "loaded": self.loaded,
            "resized": self.resized,
            "skipped": self.skipped,
            "unexpected": self.unexpected,
            "missing": self.missing,
            "initialised": self.initialised,
            "not_in_xfm": self.not_in_xfm,
        }
