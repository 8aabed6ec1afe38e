"""The names per-image outputs are written under (inference.py's files, the demo's downloads): never two alike,
so no image's results overwrite another's."""
from collections import Counter
from pathlib import PurePosixPath


def output_stems(names):
    """File names (no folders) -> output stems, one per name in order: the file's stem (img_1.jpg -> img_1);
    its whole name where names share a stem (x.jpg, x.png -> x.jpg, x.png); a numbered name (x.jpg_2) where
    even that repeats (two uploads called x.jpg, or x.jpg beside x.jpg.png). Compared case-insensitively: on
    such file systems X.json and x.json are one file. An empty name counts as "image"."""
    paths = [PurePosixPath(name) for name in names]
    stems = [path.stem or "image" for path in paths]
    stem_counts = Counter(stem.casefold() for stem in stems)
    wanted = [stem if stem_counts[stem.casefold()] == 1 else (path.name or stem) for path, stem in zip(paths, stems)]
    taken = {name.casefold() for name in wanted}   # a numbered name must not take a name another input wants
    given, result = set(), []
    for name in wanted:
        if name.casefold() in given:
            number = 2
            while f"{name}_{number}".casefold() in taken:
                number += 1
            name = f"{name}_{number}"
            taken.add(name.casefold())
        given.add(name.casefold())
        result.append(name)
    return result
