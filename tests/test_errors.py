"""errors.short_repr: a one-line repr of values read from hostile files, never built whole."""

import time

import numpy as np

from keras_anime_gan.errors import short_repr


def test_small_values_read_as_their_repr():
    value = {"a": (1,), "b": [2.5, None, True], "c": b"x\n"}
    assert short_repr(value) == "{'a': (1,), 'b': [2.5, None, True], 'c': b'x\\n'}"
    assert short_repr("line one\nline two") == "'line one\\nline two'"
    assert short_repr("caf\u00e9") == "'caf\\xe9'"  # ASCII only
    assert short_repr(frozenset()) == "{}" and short_repr(()) == "()"


def test_huge_shared_and_deep_values_are_cut_quickly():
    shared = []
    for _ in range(200):  # 2**200 paths: a full repr would never end
        shared = [shared, shared]
    deep = ()
    for _ in range(100_000):  # deeper than any recursion limit
        deep = (deep,)
    values = [shared, deep, "x" * 10**8, 10**100_000, list(range(10**6)), {i: i for i in range(10**5)}]
    started = time.perf_counter()
    texts = [short_repr(value) for value in values]
    assert time.perf_counter() - started < 0.5  # a few milliseconds: each repr stops after ~80 characters
    assert texts[0] == "[[[[...], [...]], [[...], [...]]], [[[...], [...]], [[...], [...]]]]"
    assert texts[1] == "((((...),),),)"
    assert texts[2] == "'" + "x" * 79 + "..." and texts[3] == "<an int of 332193 bits>"
    assert texts[4].startswith("[0, 1, 2, 3") and texts[4].endswith("...") and len(texts[4]) == 83
    assert all(len(text) <= 83 and "\n" not in text for text in texts)


def test_objects_show_their_type_and_arrays_their_shape_never_their_own_repr():
    class Loud:
        def __repr__(self):
            raise AssertionError("never called")

    assert short_repr(Loud()) == "<a Loud>"
    assert short_repr(np.zeros((3, 4), np.float32)) == "<a float32 array of shape (3, 4)>"
    assert short_repr([np.zeros(2)]) == "[<a float64 array of shape (2,)>]"
    assert short_repr("abcdef", limit=4) == "'abc..."
