"""db_tf.output_names: the names inference.py and the demo write per-image results under."""
import itertools
import random

from db_tf.output_names import output_stems


def test_hand_worked_names():
    assert output_stems(["img_1.jpg", "img_2.jpg"]) == ["img_1", "img_2"]
    assert output_stems(["a.jpg", "a.png", "A.tif", "b.jpg", "c.tif"]) == ["a.jpg", "a.png", "A.tif", "b", "c"]
    # the whole name repeats: x.jpg beside x.jpg.png, or two uploads of one name
    assert output_stems(["x.jpg", "x.png", "x.jpg.png"]) == ["x.jpg", "x.png", "x.jpg_2"]
    assert output_stems(["a.jpg", "a.jpg", "A.JPG"]) == ["a.jpg", "a.jpg_2", "A.JPG_3"]
    # a numbered name never takes a name another input wants
    assert output_stems(["x.jpg", "X.jpg", "x.jpg_2.png"]) == ["x.jpg", "X.jpg_3", "x.jpg_2"]
    assert output_stems(["", "", "image.png"]) == ["image", "image_2", "image.png"]


def test_names_are_unique_case_insensitively_and_keep_unshared_stems():
    """Brute force over many lists drawn from a small alphabet of colliding names."""
    parts = ["a", "A", "a.jpg", "a_2", "x", "x.png", ""]
    alphabet = sorted({"".join(p) + ext for p in itertools.product(parts, repeat=2) for ext in ("", ".jpg", ".PNG")})
    rng, kept = random.Random(0), 0
    for _ in range(3000):
        names = [rng.choice(alphabet) for _ in range(rng.randint(1, 8))]
        stems = output_stems(names)
        assert len(stems) == len(names)
        assert len({stem.casefold() for stem in stems}) == len(stems), names
        assert all(stem for stem in stems), names
        own_stems = [name.rsplit(".", 1)[0] if "." in name[1:] else name for name in names]
        for index, (own, stem) in enumerate(zip(own_stems, stems)):
            others = [i for i in range(len(names)) if i != index]
            shared = [i for i in others if own_stems[i].casefold() == own.casefold()]
            wanted_by_another = [i for i in others if names[i].casefold() == own.casefold()]
            if own and not shared and not wanted_by_another:
                assert stem == own, (names, stems)
                kept += 1
    assert kept > 3000   # the property was tested, not skipped
