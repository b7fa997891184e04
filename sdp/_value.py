"""What the frozen value classes of the model share: copying and pickling by their fields.

Compiled by mypyc, a frozen dataclass cannot be rebuilt from its state (the state is set
attribute by attribute, which a frozen class refuses); rebuilt through its constructor
from its fields it can, compiled or not, so ``copy``, ``deepcopy`` and ``pickle`` work
alike in both implementations.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from mypy_extensions import mypyc_attr


@mypyc_attr(allow_interpreted_subclasses=True)
class FrozenValue:
    __slots__ = ()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        values: Any = self  # every subclass is a dataclass
        return (type(self), tuple(getattr(self, field.name) for field in fields(values)))
