"""A collective checkpoint: one meeting of an antenna, many entrepreneurs, one session in each case file.

It is stored before the case files record it and marked recorded after, so that a crash half-way is
finished at the next start (every file recognises the checkpoint's id as a session it already holds).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class CheckpointStatus(StrEnum):
    IN_PROGRESS = "en_cours"
    RECORDED = "enregistre"


@dataclass
class Checkpoint:
    checkpoint_id: str
    antenna_id: str
    held_on: date
    duration_minutes: int | None
    present: list[uuid.UUID]
    absent: list[uuid.UUID]
    by: str
    at: datetime
    status: CheckpointStatus = CheckpointStatus.IN_PROGRESS
    # Case id -> why its file could not take the checkpoint after all (changed since the check).
    refused: dict[str, str] = field(default_factory=dict)

    def attendance(self) -> list[tuple[uuid.UUID, bool]]:
        """Every case listed, with whether the entrepreneur attended."""
        return [*((c, True) for c in self.present), *((c, False) for c in self.absent)]
