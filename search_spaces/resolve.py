"""Read an architecture the way users give one: an arch string, a zoo name, or a JSON file."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from nas.errors import InputError
from nas.search_spaces.arch import Arch
from nas.search_spaces.zoo import ZOO


def resolve_arch(text: str) -> Arch:
    """`text` as a zoo name, a path to an arch JSON file, or a one-line arch string."""
    if text in ZOO:
        return ZOO[text]()
    if text.startswith("stem_"):
        return Arch.from_string(text)
    path = Path(text)
    # A zoo name with a typo ('mobilenet_v2_0.7') has a suffix too: it is a file only by its
    # .json, a folder in it, or a file there.
    if text.endswith(".json") or "/" in text or os.sep in text or path.exists():
        if not path.is_file():
            raise InputError(f"architecture file {text} does not exist")
        try:
            return Arch.from_json(path.read_text())
        except InputError as error:
            raise InputError(f"{text}: {error}") from None
        except UnicodeDecodeError:
            raise InputError(f"architecture file {text} is not UTF-8 text (JSON)") from None
        except RecursionError:  # json gives up on a file of thousands of nested levels
            raise InputError(
                f"architecture file {text} is nested too deeply to be an architecture (JSON)"
            ) from None
    close = difflib.get_close_matches(text, list(ZOO), n=1)
    if close:
        raise InputError(f"{text!r} is not a zoo name; did you mean {close[0]!r}? ('nas zoo')")
    raise InputError(
        f"{text!r} is neither a zoo name ({', '.join(ZOO)}), an existing JSON "
        f"file, nor an arch string like 'stem_c16_k3_s2_hs:mb_e4_k3_s2_c24_re:"
        f"head_c960_hs'"
    )
