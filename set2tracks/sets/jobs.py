"""Background jobs of the sets package (enqueued by dotted path, take ids)."""

from __future__ import annotations

import logging

from set2tracks.queues import job
from set2tracks.sets import services

logger = logging.getLogger(__name__)


@job
def recount_set(set_id: int) -> None:
    """Recompute the counters of a set, its channel and its tracks."""
    services.recount_set(set_id)
    logger.info("recounted set %s", set_id)
