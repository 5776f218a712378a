"""A user and a topic new to them, for the live history tests."""

import numpy as np


def a_user_and_a_topic_new_to_them(world):
    """(user id, a pin of their main topic, the most popular pins of a topic absent from
    their built history, that topic)."""
    data = world.data
    popularity = data.popularity()
    for user in data.user_ids:
        history = data.history(user)
        weights = np.bincount(data.pin_topic[[p for p, _ in history]], weights=[w for _, w in history],
                              minlength=world.n_topics)
        if not history or weights.min() > 0:
            continue
        new, main = int(np.argmin(weights)), int(np.argmax(weights))
        opened = next(int(data.pin_ids[p]) for p, _ in history if data.pin_topic[p] == main)
        clicked = [int(data.pin_ids[p]) for p in np.argsort(-popularity) if data.pin_topic[p] == new][:8]
        return user, opened, clicked, new
    raise AssertionError("every user has every topic")


def topic_count(world, pin_ids, topic) -> int:
    index = {int(p): i for i, p in enumerate(world.data.pin_ids)}
    return sum(int(world.data.pin_topic[index[p]] == topic) for p in pin_ids)
