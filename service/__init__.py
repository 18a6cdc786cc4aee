"""``tstore serve``: the HTTP face of the store, and the process that owns it.

Routes are thin: they take typed parameters, call the query library (``queries``) or the
rebuild service (``consumers.admin``), and return typed answers, each stamped with how fresh
the store is. Errors leave as RFC 9457 problem details, never as a traceback.
"""
