"""A federation in one process: in-memory chain, content and gossip, real peer nodes, a
virtual clock.  A consortium and research tool, not part of an institution's peer.

:func:`fedchain.simulator.run.simulate` runs a built-in task end to end;
:class:`fedchain.simulator.federation.VirtualFederation` is the harness underneath (the node's
unit tests drive it step by step).
"""
