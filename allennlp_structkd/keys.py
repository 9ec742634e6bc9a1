"""Cache keys of sentences: one injective encoding of sequences of strings, hashed."""
import hashlib
import json
from typing import Iterable

# Raised whenever the encoding below changes, so that caches written with older keys are never read as new
# (the teacher-output cache's file names carry it).
KEY_VERSION = 2


def sequence_key(*sequences: Iterable[str], digits: int = 16) -> str:
    """The first ``digits`` hex digits of SHA-256 over the JSON list of ``sequences``: two different inputs never
    share an encoding (a word that contains a separator character stays one word), so they share a key only by a
    hash collision."""
    encoded = json.dumps([list(sequence) for sequence in sequences], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:digits]
