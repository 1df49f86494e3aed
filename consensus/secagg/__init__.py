"""Secure aggregation: members' updates are masked so only their weighted sum can be read.

* :mod:`.fixed_point` turns each member's clipped, weighted change into integers mod 2**64 so
  that masks cancel exactly and the sum has one right answer on every machine;
* :mod:`.masks` derives the pairwise masks from X25519 key agreement between members;
* :mod:`.rounds` masks one member's update, and unmasks the sum of a round's masked updates
  (with the revealed pair seeds of members that did not submit).
"""
