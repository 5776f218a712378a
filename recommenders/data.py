"""The interaction data recommenders learn from, as compact arrays. Pure: no Django.

Pins, boards and users are addressed by dense indexes 0..n-1; `pin_ids` maps an
index back to the catalog's pin id. Graphs are scipy CSR matrices, never Python
dicts of sets: a 1,000,000-pin world fits in a few hundred megabytes.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class InteractionData:
    pin_ids: np.ndarray  # int64, index -> catalog id
    pin_topic: np.ndarray  # int32 per pin
    pin_age_days: np.ndarray  # float32 per pin, 0 = newest
    board_pin: sparse.csr_matrix  # boards x pins, 1 where the pin is saved to the board
    user_pin: sparse.csr_matrix  # users x pins, engagement weight
    user_ids: tuple[str, ...]
    board_topic: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    # users x pins, 1 where the pin was served to the user and never clicked or saved by
    # them: the negatives a ranker learns from. None when nothing was logged.
    impressions: sparse.csr_matrix | None = None
    _pin_index: dict = field(default=None, repr=False, compare=False)
    _user_index: dict = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_pin_index", {int(p): i for i, p in enumerate(self.pin_ids)})
        object.__setattr__(self, "_user_index", {u: i for i, u in enumerate(self.user_ids)})

    @property
    def n_pins(self) -> int:
        return len(self.pin_ids)

    def pin_index(self, pin_id: int) -> int | None:
        return self._pin_index.get(int(pin_id))

    def user_index(self, user_id: str) -> int | None:
        return self._user_index.get(user_id)

    def history(self, user_id: str) -> list[tuple[int, float]]:
        """The user's engaged pins (index, weight), from the training interactions."""
        u = self.user_index(user_id)
        if u is None:
            return []
        row = self.user_pin[u]
        return list(zip(row.indices.tolist(), row.data.tolist(), strict=True))

    def popularity(self) -> np.ndarray:
        """Engagements plus saves per pin."""
        return (np.asarray(self.user_pin.sum(axis=0)).ravel()
                + np.asarray(self.board_pin.sum(axis=0)).ravel()).astype(np.float64)


def from_edges(pin_ids, pin_topic, pin_age_days, board_edges, n_boards, user_edges, user_ids, board_topic=None,
               impression_edges=None):
    """Build InteractionData from edge lists: board_edges (board index, pin index),
    user_edges (user index, pin index, weight), impression_edges (user index, pin index)
    of pins served and never engaged with."""
    n_pins = len(pin_ids)
    b = np.asarray(board_edges, dtype=np.int64).reshape(-1, 2)
    board_pin = sparse.csr_matrix((np.ones(len(b), dtype=np.float32), (b[:, 0], b[:, 1])), shape=(n_boards, n_pins))
    board_pin.data[:] = 1.0  # a pin saved twice to one board counts once
    u = np.asarray(user_edges, dtype=np.float64).reshape(-1, 3)
    user_pin = sparse.csr_matrix((u[:, 2].astype(np.float32), (u[:, 0].astype(np.int64), u[:, 1].astype(np.int64))),
                                 shape=(len(user_ids), n_pins))
    return InteractionData(
        pin_ids=np.asarray(pin_ids, dtype=np.int64),
        pin_topic=np.asarray(pin_topic, dtype=np.int32),
        pin_age_days=np.asarray(pin_age_days, dtype=np.float32),
        board_pin=board_pin,
        user_pin=user_pin,
        user_ids=tuple(user_ids),
        board_topic=np.asarray(board_topic if board_topic is not None else np.zeros(n_boards), dtype=np.int32),
        impressions=None if impression_edges is None else _impressions(impression_edges, len(user_ids), n_pins),
    )


def _impressions(edges, n_users: int, n_pins: int) -> sparse.csr_matrix:
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    shown = sparse.csr_matrix((np.ones(len(e), dtype=np.float32), (e[:, 0], e[:, 1])), shape=(n_users, n_pins))
    shown.data[:] = 1.0  # served twice is still one negative
    return shown
