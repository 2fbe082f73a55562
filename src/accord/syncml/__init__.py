"""SyncML 1.2 (OMA DS): the protocol, for accord's client place and server.

Pure parts, no I/O: the element tree and its two encodings (``xml``,
``wbxml``), the message values (``message``), device information
(``devinf``), authentication (``auth``), note content types (``notes``),
the line merge (``merge``), and the two roles' state machines (``client``,
``server``). The server's HTTP face is ``app`` (Starlette) over a storage
interface (``store``).
"""
