"""SQL replication: change capture and the push/pull protocol's two ends.

``capture`` (triggers into ``accord_log``), ``schema`` (portable table
descriptions), ``values`` (lossless values on the wire), ``merge`` (the
pure merge decisions), ``rows`` (rows by key), ``central`` (the central
database's side, run by the hub), ``local`` (a node's side, run by
``accord.db``).
"""
