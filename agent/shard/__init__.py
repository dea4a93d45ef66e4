"""Sharding: every replica works, each on the apps of the buckets it owns, with shared state in the cluster.

    buckets      which bucket an app is in, the preferred owner, each round's claims (pure)
    members      who is alive or dead, judged on this replica's clock (pure)
    membership   this replica's member Lease
    table        the owner table (bucket → replica), written with optimistic concurrency
    records      the durable part of an app's state and its compressed form (pure)
    shared       the per-bucket shared state: written by the owner, followed by every replica
    coordinator  the rounds, the hand-overs, and the write gate per app
    acting       for which app the current task works (read by the write gate)
    peers        requests to the other replicas' APIs

docs/sharding.md explains the design, its guarantees and its costs.
"""
