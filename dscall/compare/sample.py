"""The chunks ``dscall compare`` asks about: a deterministic sample, stratified over documents.

Documents are visited in a shuffled order and one chunk is taken from each in turn (round
robin) until ``size`` chunks are taken, so a small sample still covers many documents. Both
shuffles are seeded: the documents' order by ``seed`` alone, each document's chunk order by
``seed`` and its path, so the same corpus and seed give the same sample on every run, and
adding a document does not reshuffle the chunks picked inside the others.

Only chunk counts are kept here (``Sample`` is a set of (path, index) pairs): the run reads
the documents again and keeps the texts of the chunks picked, so memory follows the sample,
not the corpus.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    picked: frozenset[tuple[str, int]]  # (doc_path, chunk_index)
    order: tuple[tuple[str, int], ...]  # the same pairs, in the order they were drawn
    documents: int  # documents that have at least one chunk picked
    available: int  # chunks in the corpus

    def chunks_of(self, doc_path: str) -> frozenset[int]:
        return frozenset(index for path, index in self.picked if path == doc_path)


def draw_sample(counts: Iterable[tuple[str, int]], size: int, seed: int) -> Sample:
    """``size`` chunks (all of them if there are fewer) of documents with ``counts`` chunks."""
    by_path = {path: count for path, count in counts if count > 0}
    paths = sorted(by_path)
    random.Random(seed).shuffle(paths)
    queues: list[tuple[str, list[int]]] = []
    for path in paths:
        indexes = list(range(by_path[path]))
        random.Random(f"{seed}:{path}").shuffle(indexes)
        indexes.reverse()  # taken from the end: pop() is cheap
        queues.append((path, indexes))
    order: list[tuple[str, int]] = []
    while queues and len(order) < size:
        left: list[tuple[str, list[int]]] = []
        for path, indexes in queues:
            if len(order) == size:
                break
            order.append((path, indexes.pop()))
            if indexes:
                left.append((path, indexes))
        queues = left
    return Sample(
        frozenset(order),
        tuple(order),
        len({path for path, _ in order}),
        sum(by_path.values()),
    )
