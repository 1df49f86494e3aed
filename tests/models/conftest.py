"""Run the models tests on one torch thread.

These models are small: on two cores shared with other work, two intra-op threads made
training several times slower than one (measured 40 ms vs 1.3 ms per logistic-regression step).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
