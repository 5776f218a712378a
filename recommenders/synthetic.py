"""A seeded, Pinterest-like synthetic world. Pure: numpy only.

Topics have vocabularies; pins belong to a topic, have a latent quality and a
power-law popularity; users have latent topic interests (a few strong ones) and
curate boards of one or two of their topics; users engage pins with a probability
that grows with their interest in the pin's topic and the pin's quality. The
latent truth is kept, so a simulator can know every variant's true effect.
"""

from dataclasses import dataclass

import numpy as np

from recommenders.data import InteractionData, from_edges

WORDS = [
    "garden", "kitchen", "recipe", "travel", "beach", "mountain", "wedding", "dress", "shoes", "hair",
    "nail", "tattoo", "quote", "art", "drawing", "painting", "diy", "craft", "knit", "wood",
    "home", "decor", "bedroom", "living", "bathroom", "outdoor", "patio", "plant", "flower", "succulent",
    "cake", "cookie", "bread", "pasta", "salad", "soup", "vegan", "keto", "coffee", "cocktail",
    "fitness", "yoga", "run", "workout", "style", "outfit", "vintage", "modern", "minimal", "boho",
    "car", "bike", "camping", "hiking", "photo", "camera", "design", "logo", "font", "poster",
    "dog", "cat", "bird", "horse", "baby", "kids", "party", "holiday", "christmas", "halloween",
]


@dataclass(frozen=True)
class World:
    data: InteractionData
    n_topics: int
    pin_quality: np.ndarray  # latent, in (0, 1)
    user_interest: np.ndarray  # users x topics, rows sum to 1
    pin_titles: list[str]
    board_owner: np.ndarray  # user index per board
    topic_names: list[str]

    def engagement_probability(self, user: int, pins: np.ndarray, base: float = 0.05) -> np.ndarray:
        """The ground truth: P(click) of a user on pins shown at the top of the grid."""
        interest = self.user_interest[user, self.data.pin_topic[pins]] * self.n_topics
        return np.clip(base * interest * (0.5 + self.pin_quality[pins]), 0, 1)


def _topic_draws(rng, interest: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """One topic per row of `owners`, drawn from that user's interest distribution."""
    cumulative = np.cumsum(interest, axis=1)[owners]
    return np.minimum((cumulative < rng.random((len(owners), 1))).sum(axis=1), interest.shape[1] - 1)


def _pins_of_topics(rng, topics: np.ndarray, by_topic, attract_by_topic) -> np.ndarray:
    """One pin per entry of `topics`, drawn from the topic's pins by attractiveness."""
    pins = np.full(len(topics), -1, dtype=np.int64)
    for t in np.unique(topics):
        where = np.flatnonzero(topics == t)
        if len(by_topic[t]):
            pins[where] = rng.choice(by_topic[t], size=len(where), p=attract_by_topic[t])
    return pins


# The world `seed_demo` loads, and the one `simulate` regenerates for its ground truth.
DEMO_WORLD = {"n_pins": 2000, "n_users": 500, "seed": 7}


def generate_world(n_pins: int = 2000, n_users: int = 500, n_topics: int = 12, boards_per_user: float = 3.0,
                   pins_per_board: int = 25, engagements_per_user: int = 40, seed: int = 7) -> World:
    rng = np.random.default_rng(seed)
    topic_names = [f"{WORDS[(3 * t) % len(WORDS)]}-{WORDS[(3 * t + 1) % len(WORDS)]}" for t in range(n_topics)]
    pin_topic = rng.integers(0, n_topics, n_pins)
    pin_quality = rng.beta(2, 2, n_pins)
    # Power-law attractiveness within the catalog (Zipf-like ranks, shuffled).
    attract = (1.0 / np.arange(1, n_pins + 1) ** 0.8)[rng.permutation(n_pins)] * (0.5 + pin_quality)
    pin_age_days = rng.exponential(60, n_pins).astype(np.float32)
    words = np.asarray(WORDS)
    title_words = words[(3 * pin_topic[:, None] + rng.integers(0, 6, (n_pins, 3))) % len(WORDS)]
    titles = [f"{a} {b} {c} #{i}" for i, (a, b, c) in enumerate(title_words.tolist())]

    user_interest = rng.dirichlet(np.full(n_topics, 0.3), n_users)
    by_topic = [np.flatnonzero(pin_topic == t) for t in range(n_topics)]
    attract_by_topic = [attract[p] / attract[p].sum() if len(p) else p for p in by_topic]

    # Boards: each user curates a few, each mostly of one of their topics, with a
    # fifth as many pins from another of their interests.
    board_owner = np.repeat(np.arange(n_users), rng.poisson(boards_per_user, n_users) + 1)
    n_boards = len(board_owner)
    board_topic = _topic_draws(rng, user_interest, board_owner)
    sizes = np.maximum(1, rng.poisson(pins_per_board, n_boards))
    main_boards = np.repeat(np.arange(n_boards), sizes)
    main_pins = _pins_of_topics(rng, board_topic[main_boards], by_topic, attract_by_topic)
    extra_sizes = np.maximum(1, sizes // 5)
    extra_topic = _topic_draws(rng, user_interest, board_owner)
    extra_boards = np.repeat(np.arange(n_boards), extra_sizes)
    extra_pins = _pins_of_topics(rng, extra_topic[extra_boards], by_topic, attract_by_topic)
    boards = np.concatenate([main_boards, extra_boards])
    pins = np.concatenate([main_pins, extra_pins])
    keep = pins >= 0
    board_edges = np.column_stack([boards[keep], pins[keep]])

    # Engagements: topics by interest, pins by attractiveness; a save weighs 2.
    per_user = np.maximum(1, rng.poisson(engagements_per_user, n_users))
    engaged_users = np.repeat(np.arange(n_users), per_user)
    engaged_pins = _pins_of_topics(rng, _topic_draws(rng, user_interest, engaged_users), by_topic, attract_by_topic)
    weights = 1.0 + (rng.random(len(engaged_users)) < 0.3)
    keep = engaged_pins >= 0
    user_edges = np.column_stack([engaged_users[keep], engaged_pins[keep], weights[keep]])

    pin_ids = np.arange(1, n_pins + 1, dtype=np.int64)
    # Repeated (user, pin) edges are summed by the sparse constructor: that is the weight.
    data = from_edges(pin_ids, pin_topic, pin_age_days, board_edges, n_boards, user_edges,
                      [f"user-{u}" for u in range(n_users)], board_topic)
    return World(data=data, n_topics=n_topics, pin_quality=pin_quality, user_interest=user_interest,
                 pin_titles=titles, board_owner=board_owner, topic_names=topic_names)
