"""The dns module: an authoritative server, zone data rules and BIND zone files.

``records`` and ``zonefile`` are the data rules the admin API uses; the server
(``module``, ``server``, ``answers``, ``transfer``) runs in the dns workers.
"""
