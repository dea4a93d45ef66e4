"""Pure decisions over plain data: what is desired, what differs, what is healthy.

Nothing in this package (except `sync`, which runs a plan) does I/O.
"""
