"""Batched deletes (docs/rules.md): up to 1000 cont_signs a call; a refused batch is halved until
the item at fault is alone, so one bad item never holds back the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from syncd.api.baidu.limits import MAX_DELETE_BATCH
from syncd.errors import (
    ApiError,
    BadImageError,
    BadRequestError,
    ItemMissingError,
    RateError,
    TransientError,
    ValidationError,
)


@dataclass
class DeleteOutcome:
    """What became of each cont_sign handed to ``delete_in_batches``.

    ``deleted``: gone from the gallery (deleted now, or already missing: 216680);
    ``failed``: refused on its own, with the error (never retried by itself);
    ``retry``: not done for a passing reason (transient, rate), with the error;
    ``untried``: not sent because ``stopped`` (quota, setup, token) ended the run.
    """

    deleted: list[str] = field(default_factory=list)
    failed: dict[str, Exception] = field(default_factory=dict)
    retry: dict[str, Exception] = field(default_factory=dict)
    untried: list[str] = field(default_factory=list)
    stopped: ApiError | None = None


def chunk(items: Sequence[str], size: int = MAX_DELETE_BATCH) -> list[list[str]]:
    """``items`` in consecutive lists of at most ``size``."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def delete_in_batches(
    cont_signs: Sequence[str],
    delete: Callable[[Sequence[str]], object],
    batch_size: int = MAX_DELETE_BATCH,
    on_settled: Callable[[DeleteOutcome], None] | None = None,
) -> DeleteOutcome:
    """Delete ``cont_signs`` with as few ``delete`` calls as the API allows.

    ``delete`` is one API call for a batch (it raises the errors of ``syncd.errors``).
    A batch refused for an item-level reason (bad request, item missing) is halved until
    the culprit is alone: a lone missing item counts as deleted, a lone refused one as
    failed. Passing troubles (transient, rate) put the batch on ``retry`` and the rest
    goes on; account- or gallery-wide errors stop everything (``stopped``).
    ``on_settled`` is called with the running outcome whenever a batch is settled (deleted,
    failed or put on retry), so the caller can record progress call by call.
    """
    outcome = DeleteOutcome()
    pending = chunk(list(dict.fromkeys(cont_signs)), batch_size)
    pending.reverse()  # a stack: first batch on top, halves pushed so the left half runs first
    while pending:
        batch = pending.pop()
        try:
            delete(batch)
        except (ItemMissingError, BadRequestError, BadImageError, ValidationError) as error:
            if len(batch) > 1:
                half = len(batch) // 2
                pending.append(batch[half:])
                pending.append(batch[:half])
                continue
            if isinstance(error, ItemMissingError):
                outcome.deleted.extend(batch)
            else:
                outcome.failed[batch[0]] = error
        except (TransientError, RateError) as error:
            for sign in batch:
                outcome.retry[sign] = error
        except ApiError as error:
            outcome.stopped = error
            outcome.untried.extend(batch)
            for rest in reversed(pending):
                outcome.untried.extend(rest)
            pending.clear()
        else:
            outcome.deleted.extend(batch)
        if on_settled is not None:
            on_settled(outcome)
    return outcome
