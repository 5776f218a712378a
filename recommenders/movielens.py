"""MovieLens-100k as RecBole ships it inside its PyPI wheel: fetched with pip (a PyPI
package, nothing else), read with zipfile, never installed. Only the evaluation and
the benchmarks use it; the product never needs it."""

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WHEEL = "recbole==1.2.1"
INTER = "recbole/dataset_example/ml-100k/ml-100k.inter"
ITEM = "recbole/dataset_example/ml-100k/ml-100k.item"


class DatasetUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Ratings:
    users: np.ndarray  # dense user index per rating
    items: np.ndarray  # dense item index per rating
    ratings: np.ndarray
    timestamps: np.ndarray
    item_ids: np.ndarray  # MovieLens item id per index
    item_genres: list[list[str]]

    @property
    def n_users(self) -> int:
        return int(self.users.max()) + 1

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def wheel_path(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("recbole-1.2.1-*.whl"))
    if found:
        return found[0]
    result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache), WHEEL],
                            capture_output=True, text=True, timeout=300)
    found = sorted(cache.glob("recbole-1.2.1-*.whl"))
    if result.returncode != 0 or not found:
        raise DatasetUnavailable(f"could not download {WHEEL} from PyPI: {result.stderr.strip()[-300:]}")
    return found[0]


def parse(inter_text: str, item_text: str) -> Ratings:
    rows = [line.split("\t") for line in inter_text.strip().splitlines()[1:]]
    raw_users = np.array([int(r[0]) for r in rows])
    raw_items = np.array([int(r[1]) for r in rows])
    item_ids, items = np.unique(raw_items, return_inverse=True)
    _, users = np.unique(raw_users, return_inverse=True)
    genres: dict[int, list[str]] = {}
    header, *lines = item_text.strip().splitlines()
    columns = header.split("\t")
    genre_col = next(i for i, c in enumerate(columns) if c.startswith("class"))
    for line in lines:
        parts = line.split("\t")
        genres[int(parts[0])] = parts[genre_col].split() if len(parts) > genre_col else []
    return Ratings(users=users, items=items, ratings=np.array([float(r[2]) for r in rows]),
                   timestamps=np.array([float(r[3]) for r in rows]), item_ids=item_ids,
                   item_genres=[genres.get(int(i), []) for i in item_ids])


def load(cache: Path) -> Ratings:
    with zipfile.ZipFile(wheel_path(cache)) as z:
        return parse(z.read(INTER).decode(), z.read(ITEM).decode("latin-1"))
