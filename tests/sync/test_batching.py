"""Batched deletes: fewest calls, and one bad item never blocks the others."""

from __future__ import annotations

from collections.abc import Sequence

from syncd.errors import BadRequestError, GalleryNotCreatedError, ItemMissingError, TransientError
from syncd.sync.batching import DeleteOutcome, delete_in_batches


class FakeGallery:
    """Holds cont_signs; refuses a batch holding a poisoned or (optionally) missing one."""

    def __init__(self, signs: Sequence[str], poisoned: Sequence[str] = ()) -> None:
        self.items = set(signs)
        self.poisoned = set(poisoned)
        self.calls: list[int] = []

    def delete(self, batch: Sequence[str]) -> None:
        self.calls.append(len(batch))
        if self.poisoned & set(batch):
            raise BadRequestError(216100, "invalid param")
        if not set(batch) <= self.items:
            raise ItemMissingError(216680, "item not exist")
        self.items -= set(batch)


def signs(n: int) -> list[str]:
    return [f"{i},{i * 7}" for i in range(n)]


def test_2500_deletes_cost_three_calls() -> None:
    gallery = FakeGallery(signs(2500))
    outcome = delete_in_batches(signs(2500), gallery.delete)
    assert gallery.calls == [1000, 1000, 500]
    assert len(outcome.deleted) == 2500 and not gallery.items


def test_a_bad_item_is_isolated_and_the_rest_deleted() -> None:
    all_signs = signs(1000)
    gallery = FakeGallery(all_signs, poisoned=[all_signs[613]])
    outcome = delete_in_batches(all_signs, gallery.delete)
    assert list(outcome.failed) == [all_signs[613]]
    assert gallery.items == {all_signs[613]}
    assert len(outcome.deleted) == 999
    assert len(gallery.calls) <= 2 * 10 + 1  # halving: about two calls per level


def test_an_item_already_gone_counts_as_deleted() -> None:
    all_signs = signs(10)
    gallery = FakeGallery(all_signs[1:])
    outcome = delete_in_batches(all_signs, gallery.delete)
    assert sorted(outcome.deleted) == sorted(all_signs)
    assert not outcome.failed and not gallery.items


def test_transient_error_puts_the_batch_on_retry_and_goes_on() -> None:
    gallery = FakeGallery(signs(1500))
    answers = iter([TransientError(282000, "internal error")])

    def flaky(batch: Sequence[str]) -> None:
        error = next(answers, None)
        if error is not None:
            raise error
        gallery.delete(batch)

    outcome = delete_in_batches(signs(1500), flaky)
    assert len(outcome.retry) == 1000
    assert len(outcome.deleted) == 500


def test_setup_error_stops_every_remaining_batch() -> None:
    def refused(batch: Sequence[str]) -> None:
        raise GalleryNotCreatedError(216017, "not initialized")

    seen: list[DeleteOutcome] = []
    outcome = delete_in_batches(signs(2100), refused, on_settled=seen.append)
    assert outcome.stopped is not None and outcome.stopped.code == 216017
    assert len(outcome.untried) == 2100
    assert not outcome.deleted and len(seen) == 1


def test_duplicate_cont_signs_are_sent_once() -> None:
    gallery = FakeGallery(signs(3))
    outcome = delete_in_batches(signs(3) * 2, gallery.delete)
    assert gallery.calls == [3]
    assert len(outcome.deleted) == 3
