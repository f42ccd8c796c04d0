"""An ``ssl.SSLObject`` whose read, write and pending skip a Python frame.

uvloop's TLS layer calls ``read``, ``write`` and ``pending`` on the
SSLObject several times per request. The standard class forwards each call
through a Python method to its ``_ssl`` object. This one stores the ``_ssl``
object's own methods, which take the same arguments, on the instance, so
each call goes straight to C.
"""

from __future__ import annotations

import ssl
from typing import Any


class DirectSSLObject(ssl.SSLObject):
    """Same behaviour as ``ssl.SSLObject``, one call level less per I/O."""

    @classmethod
    def _create(cls, *args: Any, **kwargs: Any) -> DirectSSLObject:
        self: DirectSSLObject = super()._create(*args, **kwargs)  # type: ignore[misc]
        inner = getattr(self, "_sslobj", None)
        if inner is None:
            # A Python whose SSLObject is built differently: keep its methods.
            return self
        self.read = inner.read  # type: ignore[method-assign]
        self.write = inner.write  # type: ignore[method-assign]
        self.pending = inner.pending  # type: ignore[method-assign]
        return self
