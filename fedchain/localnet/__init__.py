"""A federation on one machine, for development, demos and tests: launchers of the outside
programs (a development chain, one Kubo per institution, peer processes) and the devnet that
wires them together. Nothing here runs inside an institution's peer."""
