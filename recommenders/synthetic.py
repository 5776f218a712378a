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


def generate_world(n_pins: int = 2000, n_users: int = 500, n_topics: int = 12, boards_per_user: float = 3.0,
                   pins_per_board: int = 25, engagements_per_user: int = 40, seed: int = 7) -> World:
    rng = np.random.default_rng(seed)
    topic_names = [f"{WORDS[(3 * t) % len(WORDS)]}-{WORDS[(3 * t + 1) % len(WORDS)]}" for t in range(n_topics)]
    pin_topic = rng.integers(0, n_topics, n_pins)
    pin_quality = rng.beta(2, 2, n_pins)
    # Power-law attractiveness within the catalog (Zipf-like ranks, shuffled).
    attract = (1.0 / np.arange(1, n_pins + 1) ** 0.8)[rng.permutation(n_pins)] * (0.5 + pin_quality)
    pin_age_days = rng.exponential(60, n_pins).astype(np.float32)
    titles = []
    for i in range(n_pins):
        t = pin_topic[i]
        vocab = [WORDS[(3 * t + j) % len(WORDS)] for j in range(6)]
        titles.append(" ".join(rng.choice(vocab, 3)) + f" #{i}")

    user_interest = rng.dirichlet(np.full(n_topics, 0.3), n_users)
    by_topic = [np.flatnonzero(pin_topic == t) for t in range(n_topics)]
    attract_by_topic = [attract[p] / attract[p].sum() if len(p) else p for p in by_topic]

    board_edges, board_owner, board_topic = [], [], []
    n_boards_each = rng.poisson(boards_per_user, n_users) + 1
    for u in range(n_users):
        for _ in range(n_boards_each[u]):
            t = rng.choice(n_topics, p=user_interest[u])
            b = len(board_owner)
            board_owner.append(u)
            board_topic.append(t)
            if not len(by_topic[t]):
                continue
            size = max(1, rng.poisson(pins_per_board))
            # Mostly the board's topic, sometimes another of the owner's interests.
            main = rng.choice(by_topic[t], size=size, p=attract_by_topic[t])
            board_edges += [(b, int(p)) for p in main]
            extra_t = rng.choice(n_topics, p=user_interest[u])
            if len(by_topic[extra_t]):
                for p in rng.choice(by_topic[extra_t], size=max(1, size // 5), p=attract_by_topic[extra_t]):
                    board_edges.append((b, int(p)))

    user_edges = []
    for u in range(n_users):
        n = max(1, rng.poisson(engagements_per_user))
        topics = rng.choice(n_topics, size=n, p=user_interest[u])
        for t in np.unique(topics):
            if not len(by_topic[t]):
                continue
            count = int((topics == t).sum())
            pins = rng.choice(by_topic[t], size=count, p=attract_by_topic[t])
            for p in pins:
                user_edges.append((u, int(p), 1.0 + float(rng.random() < 0.3)))  # saves weigh 2
    pin_ids = np.arange(1, n_pins + 1, dtype=np.int64)
    data = from_edges(pin_ids, pin_topic, pin_age_days, board_edges, len(board_owner), user_edges,
                      [f"user-{u}" for u in range(n_users)], board_topic)
    # Duplicate (user, pin) edges were summed by the sparse constructor: that is the weight.
    return World(data=data, n_topics=n_topics, pin_quality=pin_quality, user_interest=user_interest,
                 pin_titles=titles, board_owner=np.asarray(board_owner), topic_names=topic_names)
