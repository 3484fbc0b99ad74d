"""How a status stores its index sets: readable text, a compressed bitmap, or a relation.

Every index set of a status (``partitions``, ``steps[].partitions``, ``retries[].partitions``,
``ledger``, ``runs.scheduled``/``missedSet``) is a string in one of these forms:

* text, Kubernetes' ``completedIndexes`` form: ``"1,3-5,7"`` (``""``: empty). Every set whose
  text is at most :data:`TEXT_LIMIT` characters, and any longer one the bitmap form does not
  beat, is written so (a clean run stays readable in ``kubectl get -o yaml``);
* ``"~<base64>"``: the members as a compressed bitmap: a Roaring bitmap in its portable
  serialization, its even bytes then its odd bytes (the high bytes of sorted 16-bit values
  then compress well), zlib-compressed, base64. About 1 bit per partition of the set's span
  at worst (122 KiB before base64 for 1,000,000 partitions with random outcomes), 10 to 16
  bits per member of a sparse set, a few hundred bytes for regular patterns (every other
  partition);
* ``"^<lo>-<hi>"`` or ``"^<lo>-<hi>~<base64>"``: *relative* to the other sets of its group
  (one step's, or the roll-up's, ``partitions``; the ledger's ``succeeded``/``failed`` of one
  step): every index in ``lo..hi`` that none of the group's other sets has, with the indices
  of the optional bitmap toggled. The sets of a group are disjoint, so the last of them is
  mostly "the rest": with random outcomes ``failed`` is ``"^0-999999"`` beside a bitmap of
  ``succeeded``. At most one set of a group is relative;
* ``"=<key>"``: a reference to an equal set written before it in the same status
  (``api/model.py``).

Reading a status resolves relations and references (the models' validators, with
:func:`resolve_relative`), so readers see text or bitmaps only, and
:meth:`backfill_operator.planning.ranges.IndexSet.parse` reads both. Writers choose the form
with :func:`choose` (``IndexSet.stored``) and relations with :func:`relate` (the models'
``compacted()``). Bitmaps hold indices up to :data:`BITMAP_MAX_INDEX`; a set with a larger
index is always text.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Callable, Mapping, Sequence

from pyroaring import BitMap

__all__ = [
    "BITMAP_MAX_INDEX",
    "BITMAP_PREFIX",
    "RELATIVE_PREFIX",
    "TEXT_LIMIT",
    "bitmap_of",
    "choose",
    "decode_bitmap",
    "encode_bitmap",
    "normalized",
    "relate",
    "resolve_relative",
    "stored_of_bitmap",
]

#: Prefix of the bitmap form.
BITMAP_PREFIX = "~"
#: Prefix of the relative form.
RELATIVE_PREFIX = "^"
#: Largest index the bitmap form holds (32-bit Roaring bitmaps).
BITMAP_MAX_INDEX = 2**32 - 1
#: A set whose text is at most this many characters is always written as text.
TEXT_LIMIT = 1024
#: A set of at most this many intervals has its text compared with its bitmap (above: bitmap).
TEXT_MAX_INTERVALS = 4096
#: Largest decompressed bitmap accepted (a bitmap of every 32-bit index is 512 MiB; a status'
#: sets are far smaller): a corrupt or hostile string cannot exhaust memory.
MAX_DECODED_BYTES = 64 * 2**20
#: A relative set is written only when it saves at least this many characters.
RELATIVE_MIN_SAVING = 64

_RELATIVE = re.compile(r"\^(\d{1,10})-(\d{1,10})(~.*)?", re.DOTALL)


def encode_bitmap(bitmap: BitMap) -> str:
    """Return ``"~<base64>"``: the bitmap (canonical, run-optimised), byte planes, zlib.

    Equal sets give equal strings (the serialization of a run-optimised bitmap is canonical),
    so a status that did not change compares equal to the one read back.
    """
    canonical = bitmap.copy()  # never mutate a bitmap another reader may hold
    canonical.run_optimize()
    data = canonical.serialize()
    planes = data[0::2] + data[1::2]
    return BITMAP_PREFIX + base64.b64encode(zlib.compress(planes, 9)).decode()


def decode_bitmap(text: str) -> BitMap:
    """Return the bitmap of a ``"~<base64>"`` string; raises ValueError when it is not one."""
    if not text.startswith(BITMAP_PREFIX):
        raise ValueError(f'"{text[:40]}" is not a compressed index set (it starts with "~")')
    try:
        raw = base64.b64decode(text[1:].strip(), validate=True)
        inflate = zlib.decompressobj()
        planes = inflate.decompress(raw, MAX_DECODED_BYTES)
        if inflate.unconsumed_tail or not inflate.eof:
            raise ValueError("truncated or larger than a status set can be")
        data = bytearray(len(planes))
        even = (len(planes) + 1) // 2
        data[0::2] = planes[:even]
        data[1::2] = planes[even:]
        return BitMap.deserialize(bytes(data))
    except (binascii.Error, zlib.error, ValueError, OverflowError) as exc:
        raise ValueError(f'"{text[:40]}…" is not a valid compressed index set: {exc}') from None


def _bitmap_of_text(text: str) -> BitMap:
    bitmap = BitMap()
    if not text.strip():
        return bitmap
    singles: list[int] = []
    for item in text.split(","):
        lo_text, dash, hi_text = item.partition("-")
        lo = int(lo_text)
        hi = int(hi_text) if dash else lo
        if lo < 0 or hi < lo or hi > BITMAP_MAX_INDEX:
            raise ValueError(f'"{item}" is not an index range a bitmap holds')
        if lo == hi:
            singles.append(lo)
        else:
            bitmap.add_range(lo, hi + 1)
    bitmap.update(singles)
    return bitmap


def bitmap_of(value: str) -> BitMap | None:
    """Return the members of a text or bitmap form as a bitmap; None for anything else.

    None for a relative form or a reference (resolve those first), for malformed text and for
    a set with an index above :data:`BITMAP_MAX_INDEX`.
    """
    try:
        if value.startswith(BITMAP_PREFIX):
            return decode_bitmap(value)
        if value.startswith((RELATIVE_PREFIX, "=")):
            return None
        return _bitmap_of_text(value)
    except ValueError:
        return None


def _runs_text(bitmap: BitMap) -> str:
    starts = bitmap.difference(bitmap.shift(1)).to_array()
    ends = bitmap.difference(bitmap.shift(-1)).to_array()
    return ",".join(
        str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in zip(starts, ends, strict=True)
    )


def choose(
    interval_count: int, text: Callable[[], str], bitmap: Callable[[], BitMap | None]
) -> str:
    """Return the stored form of a set: its text, or its bitmap form when that is shorter.

    Text when it is at most :data:`TEXT_LIMIT` characters, or when ``bitmap()`` is None (an
    index too large); otherwise the shorter of the two, text on a tie. A set of more than
    :data:`TEXT_MAX_INTERVALS` intervals is not formatted at all (its text is longer than
    8 KiB; the bitmap is written). Deterministic: equal sets give equal strings.
    """
    plain = text() if interval_count <= TEXT_MAX_INTERVALS else None
    if plain is not None and len(plain) <= TEXT_LIMIT:
        return plain
    members = bitmap()
    if members is None:
        return plain if plain is not None else text()
    packed = encode_bitmap(members)
    return plain if plain is not None and len(plain) <= len(packed) else packed


def stored_of_bitmap(bitmap: BitMap) -> str:
    """Return the stored form (:func:`choose`) of a set given as a bitmap."""
    count = len(bitmap.difference(bitmap.shift(1)))
    return choose(count, lambda: _runs_text(bitmap), lambda: bitmap)


def normalized(value: str) -> str:
    """Return ``value`` in its stored form (:func:`choose`).

    A text longer than :data:`TEXT_LIMIT` may become a bitmap; other forms, and text that does
    not parse, are returned as they are.
    """
    if len(value) <= TEXT_LIMIT or value.startswith((BITMAP_PREFIX, RELATIVE_PREFIX, "=")):
        return value
    members = bitmap_of(value)
    return value if members is None else stored_of_bitmap(members)


def _union(values: Mapping[str, BitMap]) -> BitMap:
    out = BitMap()
    for members in values.values():
        out |= members
    return out


def _relative_form(members: BitMap, others: BitMap) -> str:
    lo, hi = members.min(), members.max()
    rest = BitMap()
    rest.add_range(lo, hi + 1)
    rest -= others
    toggled = members ^ rest
    return f"{RELATIVE_PREFIX}{lo}-{hi}" + (encode_bitmap(toggled) if toggled else "")


def relate(
    group: Mapping[str, str], resolved: Mapping[str, str], extra: Sequence[str] = ()
) -> dict[str, str]:
    """Write the one set of a group that gains most as relative to the others (if any gains).

    ``group`` maps field names to stored values (references allowed), ``resolved`` the same
    names to their resolved values; ``extra`` are more sets the relative one is relative to
    (not part of the group: the reader passes the same to :func:`resolve_relative`). Only a
    bitmap form is made relative, and only when that saves at least
    :data:`RELATIVE_MIN_SAVING` characters. Returns the group's new values.
    """
    candidates = [name for name, value in group.items() if value.startswith(BITMAP_PREFIX)]
    if not candidates:
        return dict(group)
    bitmaps: dict[str, BitMap] = {}
    values = {**resolved, **{f"\0{n}": value for n, value in enumerate(extra)}}
    for name, value in values.items():
        if not value:
            continue
        members = bitmap_of(value)
        if members is None:
            return dict(group)  # an index beyond the bitmap's range: leave the group as it is
        bitmaps[name] = members
    best: tuple[int, str, str] | None = None
    for name in candidates:
        members = bitmaps.get(name)
        if not members:
            continue
        others = _union({k: v for k, v in bitmaps.items() if k != name})
        form = _relative_form(members, others)
        saving = len(group[name]) - len(form)
        if saving >= RELATIVE_MIN_SAVING and (best is None or saving > best[0]):
            best = (saving, name, form)
    if best is None:
        return dict(group)
    return {**group, best[1]: best[2]}


def resolve_relative(value: str, others: Mapping[str, str]) -> str:
    """Return the stored form of a relative set, given the resolved values of its group.

    ``others`` are the group's other sets (text or bitmap forms), and the ``extra`` sets the
    writer passed to :func:`relate`. A malformed relative form, or one whose group cannot be
    read, resolves to the empty set ("").
    """
    match = _RELATIVE.fullmatch(value)
    if match is None:
        return ""
    lo, hi = int(match.group(1)), int(match.group(2))
    if hi < lo or hi > BITMAP_MAX_INDEX:
        return ""
    rest = BitMap()
    rest.add_range(lo, hi + 1)
    for other in others.values():
        members = bitmap_of(other) if other else BitMap()
        if members is None:
            return ""
        rest -= members
    if match.group(3):
        try:
            rest ^= decode_bitmap(match.group(3))
        except ValueError:
            return ""
    return stored_of_bitmap(rest)
