"""The interface every audit part implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from fedchain.audit.types import AuditSettings, PartResult, Progress


class AuditPart(ABC):
    """One independent check of the contracts that ends in pass or fail."""

    key: str
    """Short identifier (``compile``, ``slither``, ...), used for file names."""
    title: str
    """Heading of the part's section in the report."""

    @abstractmethod
    def run(self, settings: AuditSettings, progress: Progress) -> PartResult:
        """Run the check.  A missing or failing tool may raise a FedchainError: the runner
        records that as a failed part and goes on with the next one."""
