"""Config keys spelled the way earlier versions spelled them, read as today's.

One name per concept: K, the augmented epochs the cache holds, is ``cache.k`` (and the Ks a sweep
trains, ``train.sweep_k``), so that "epochs" counts head epochs only (``head.epochs``); whether jobs
reuse what was kept is ``reuse``, not a key of the cache. A config (or a variant's overlay) that
spells a key the former way is read as if it spelled today's, and each such key is noted once.
"""

from __future__ import annotations

# former spelling -> today's, as key paths
FORMER = {
    ("cache", "epochs"): ("cache", "k"),
    ("train", "sweep_epochs"): ("train", "sweep_k"),
    ("cache", "reuse"): ("reuse",),
}


def _dotted(path) -> str:
    return ".".join(path)


def respell(config: dict, where: str = "") -> list[str]:
    """Rewrite, in place, every key of config (and of its variants' overlays) spelled the former
    way into today's spelling; returns a note for each. ValueError where a key is spelled both ways
    with different values (which one was meant cannot be told)."""
    notes = []
    for old, new in FORMER.items():
        section = config.get(old[0]) if len(old) == 2 else config
        if not isinstance(section, dict) or old[-1] not in section:
            continue
        value = section.pop(old[-1])
        target = config
        for key in new[:-1]:
            target = target.setdefault(key, {})
        if new[-1] in target and target[new[-1]] != value:
            raise ValueError(f"{where}{_dotted(old)} ({value!r}) and {where}{_dotted(new)} ({target[new[-1]]!r}) "
                             f"name one setting: spell it {_dotted(new)} only")
        target[new[-1]] = value
        notes.append(f"{where}{_dotted(old)} is now spelled {_dotted(new)}: read as {_dotted(new)}: {value!r}")
    for name, overlay in (config.get("variants") or {}).items():
        if isinstance(overlay, dict):
            notes += respell(overlay, f"variants.{name}.")
    return notes
