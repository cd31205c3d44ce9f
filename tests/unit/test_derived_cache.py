"""xnatfs.cache.derived: values kept by their source's identity."""

from __future__ import annotations

from xnatfs.cache.derived import DerivedCache


def test_the_same_source_gets_the_same_value_and_an_equal_one_a_new_value() -> None:
    made: list[list[int]] = []

    def derive(source: list[int]) -> list[int]:
        made.append(source)
        return [x * 2 for x in source]

    cache: DerivedCache[list[int], list[int]] = DerivedCache(2)
    source = [1, 2, 3]
    value = cache.get(source, derive)
    assert value == [2, 4, 6] and cache.get(source, derive) is value
    equal = [1, 2, 3]
    assert cache.get(equal, derive) is not value and len(made) == 2


def test_a_source_pushed_out_is_derived_again() -> None:
    cache: DerivedCache[tuple[int], str] = DerivedCache(1)
    first, second = (1,), (2,)
    value = cache.get(first, repr)
    cache.get(second, repr)
    again = cache.get(first, lambda source: f"again {source}")
    assert value == "(1,)" and again == "again (1,)"
